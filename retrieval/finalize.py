"""Turn completed shards into a searchable index directory, then swap it into place.

Rows are kept in shard (= corpus listing) order; an image whose bytes were already seen is
a duplicate and is skipped with the uri it duplicates, so the result does not depend on the
order in which workers finished. A row is also skipped, with its reason, when its
descriptors are not finite or when a search could not read it back from the corpus root
(e.g. a symbolic link out of the corpus): an index holds only rows it can serve. Memory stays
bounded: descriptors are streamed shard by shard into the .npy arrays, and FAISS reads the
semantic vectors back in batches, both with plain file I/O (`npy_rows`), so the driver holds
one shard or batch at a time besides the FAISS index itself.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from chromaref.platform.errors import ConfigError, FileError
from chromaref.retrieval import store
from chromaref.retrieval.confine import CorpusRoot
from chromaref.retrieval.corpus import parse_uri
from chromaref.retrieval.npy_rows import NpyRows, NpyRowWriter
from chromaref.retrieval.storage import locate
from chromaref.retrieval.vector_index import build_vector_index

if TYPE_CHECKING:
    from chromaref.retrieval.build import BuildConfig, BuildReport

logger = logging.getLogger(__name__)


def _finite_rows(column: pa.ChunkedArray) -> np.ndarray:
    return np.isfinite(store.as_numpy(column, (-1,))).all(axis=1)


def _refusal(root: CorpusRoot, uri: str, known: dict[str, str]) -> str:
    """Why a search would refuse to read `uri` ('' when it would not), cached per file."""
    try:
        file = parse_uri(uri)[1]
    except FileError as exc:
        return exc.reason
    if file not in known:
        try:
            root.resolve(file)
            known[file] = ""
        except FileError as exc:
            known[file] = exc.reason
    return known[file]


def _keep_mask(
    staging: Path,
    records: list[store.ShardRecord],
    root: CorpusRoot,
    skipped: list[tuple[str, str]],
) -> list[np.ndarray]:
    """Per shard: which rows become index rows (usable, servable and not a duplicate)."""
    first_uri: dict[str, str] = {}
    known: dict[str, str] = {}
    masks = []
    columns = ["uri", "sha1", "reason", *store.DESCRIPTOR_COLUMNS]
    for table in store.iter_shard_tables(staging, records, columns):
        uris, digests, reasons = (table[c].to_pylist() for c in columns[:3])
        finite = np.logical_and.reduce([_finite_rows(table[c]) for c in store.DESCRIPTOR_COLUMNS])
        keep = np.zeros(len(uris), bool)
        for n, (uri, digest, reason) in enumerate(zip(uris, digests, reasons, strict=True)):
            reason = reason or _refusal(root, uri, known) or ("" if finite[n] else store.NON_FINITE)
            if reason:
                skipped.append((uri, reason))
            elif digest in first_uri:
                skipped.append((uri, f"duplicate of {first_uri[digest]}"))
            else:
                first_uri[digest] = uri
                keep[n] = True
        masks.append(keep)
    return masks


def _write_rows_and_arrays(
    staging: Path, records: list[store.ShardRecord], masks: list[np.ndarray], dims: dict
) -> int:
    """rows.parquet (with each row's descriptor digests) and the row-aligned .npy arrays."""
    count = int(sum(m.sum() for m in masks))
    row_tables = []
    digests: dict[str, list[np.ndarray]] = {name: [] for name in store.DESCRIPTOR_DTYPES}
    columns = ["id", "uri", "label", "sha1", *store.DESCRIPTOR_DTYPES]
    with ExitStack() as open_files:  # closed on every path; on success each checks its rows
        arrays = {
            name: open_files.enter_context(
                NpyRowWriter(staging / f"{name}.npy", dtype, (count, *dims[name]))
            )
            for name, dtype in store.DESCRIPTOR_DTYPES.items()
        }
        tables = store.iter_shard_tables(staging, records, columns)
        for table, keep in zip(tables, masks, strict=True):
            table = table.filter(pa.array(keep))
            for name, array in arrays.items():
                values = store.as_numpy(table[name], dims[name]).astype(array.dtype, copy=False)
                array.append(values)
                digests[name].append(store.row_digests(values))
            row_tables.append(table.select(["id", "uri", "label", "sha1"]))
    rows = pa.concat_tables(row_tables)
    for name, parts in digests.items():
        rows = rows.append_column(f"digest_{name}", pa.array(np.concatenate(parts), pa.uint64()))
    pq.write_table(rows, staging / store.ROWS)
    return count


def finalize_index(
    staging: Path,
    index_dir: Path,
    records: list[store.ShardRecord],
    *,
    corpus: str | Path,
    model_id: str,
    dims: dict[str, tuple[int, ...]],
    config: BuildConfig,
    report: BuildReport,
) -> None:
    """Consolidate, build FAISS, write the manifest, and swap the staging dir into place.

    Raises:
        ConfigError: no usable image, or `index_dir` is no longer replaceable.
    """
    start = time.perf_counter()
    records = sorted(records, key=lambda r: r.index)
    root = CorpusRoot(str(locate(corpus)), trust=True)  # the user's own corpus
    masks = _keep_mask(staging, records, root, report.skipped)
    kept = f"the descriptors are kept in {staging}, so a rerun does not compute them again"
    if not any(m.any() for m in masks):
        reasons = "; ".join(f"{uri}: {why}" for uri, why in report.skipped[:3])
        more = f"; and {len(report.skipped) - 3} more" if len(report.skipped) > 3 else ""
        raise ConfigError(
            f"no usable reference image in the corpus ({reasons}{more}); references must be "
            f"readable color images ({kept})"
        )
    report.count = _write_rows_and_arrays(staging, records, masks, dims)
    try:
        with NpyRows(staging / "semantic.npy") as semantic:
            vectors, vector_report = build_vector_index(semantic, config=config.vectors)
    except ConfigError as exc:  # e.g. a --pca-dim the corpus cannot give
        raise ConfigError(f"{exc} ({kept})") from None
    vectors.save(staging / store.FAISS)
    report.index_bytes = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
    report.stage_seconds["index"] = time.perf_counter() - start  # the manifest write is ~ms
    report.clock(report.seconds + report.stage_seconds["index"])
    manifest = {
        "format": store.FORMAT,
        "format_version": store.FORMAT_VERSION,
        "model_id": model_id,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "corpus": root.text,
        "count": report.count,
        "dims": {k: list(v) for k, v in dims.items()},
        "metric": "inner_product",
        "vector_index": asdict(vector_report),
        "files": {name: store.file_entry(staging / name) for name in store.SEARCH_FILES},
        "shards": [{"file": r.file, "sha256": r.sha256, "rows": r.rows} for r in records],
        "skipped": [list(s) for s in report.skipped],
        "build": config.model_dump(mode="json"),
        "report": {k: v for k, v in asdict(report).items() if k != "skipped"},
    }
    store.write_manifest(staging, manifest)
    store.swap_into_place(staging, index_dir)
    logger.info("index ready: %s (%d images)", index_dir, report.count)
