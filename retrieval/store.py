"""The index directory on disk: staged shards, a resumable progress log, the final layout.

    INDEX/                       (appears only when a build is complete)
      manifest.json              format, descriptor model id + weights hash, dims, counts,
                                 shard checksums, build parameters, created time
      semantic.faiss(.json)      FAISS index over the semantic vectors (row = position)
      rows.parquet               row -> id, uri, label, sha1
      semantic.npy luminance.npy local.npy   row-aligned descriptors (memory-mapped at search)
      shards/shard-NNNNN.parquet the build's canonical output, one file per planned shard
    INDEX.building/              staging: same shards + progress.jsonl while a build runs

Every file is written to a temporary name and renamed; a shard counts as done only when its
line in progress.jsonl names its checksum, so a killed build resumes without losing or
duplicating an image, and the previous INDEX stays usable until the new one replaces it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from chromaref.platform.files import atomic_path, atomic_write_text, sha256_file

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PROGRESS = "progress.jsonl"
DESCRIPTOR_COLUMNS = ("semantic", "luminance", "local")


def staging_dir(index_dir: Path) -> Path:
    return index_dir.with_name(index_dir.name + ".building")


def write_json(path: Path, payload: object) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def _column(values: np.ndarray) -> pa.Array:
    """(n, ...) numpy -> a fixed-size list column of the flattened rows (float16 kept)."""
    flat = values.reshape(len(values), -1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), flat.shape[1])


def write_shard(path: Path, rows: dict[str, np.ndarray]) -> str:
    """Write one shard atomically; returns its sha256 for the progress log."""
    table = pa.table(
        {
            **{k: pa.array(rows[k].tolist(), pa.string()) for k in ("id", "uri", "sha1", "reason")},
            "label": pa.array([v or None for v in rows["label"].tolist()], pa.string()),
            **{k: _column(rows[k]) for k in DESCRIPTOR_COLUMNS},
        }
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return sha256_file(path)


@dataclass(frozen=True)
class ShardRecord:
    """One completed shard, as logged in progress.jsonl."""

    index: int
    key: str
    file: str
    sha256: str
    rows: int


def shard_key(ids: list[str]) -> str:
    """Identity of a planned shard: the ids it holds (a changed corpus re-plans it)."""
    return hashlib.sha1("\n".join(ids).encode()).hexdigest()[:16]


def log_shard(staging: Path, record: ShardRecord) -> None:
    """Append a completed shard to the progress log, durably."""
    with open(staging / PROGRESS, "a") as f:
        f.write(json.dumps(record.__dict__) + "\n")
        f.flush()
        os.fsync(f.fileno())


def completed_shards(staging: Path) -> dict[str, ShardRecord]:
    """Shards whose log line and file checksum agree; a torn last line is ignored."""
    done: dict[str, ShardRecord] = {}
    log = staging / PROGRESS
    if not log.exists():
        return done
    for line in log.read_text().splitlines():
        try:
            record = ShardRecord(**json.loads(line))
        except (json.JSONDecodeError, TypeError):
            continue
        path = staging / record.file
        if path.exists() and sha256_file(path) == record.sha256:
            done[record.key] = record
    return done


def iter_shard_tables(
    staging: Path, records: list[ShardRecord], columns: list[str]
) -> Iterator[pa.Table]:
    for record in sorted(records, key=lambda r: r.index):
        yield pq.read_table(staging / record.file, columns=columns)


def as_numpy(column: pa.ChunkedArray, shape: tuple[int, ...]) -> np.ndarray:
    """A fixed-size list column back to an (n, *shape) array."""
    flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(len(column), *shape)


def swap_into_place(staging: Path, index_dir: Path) -> None:
    """Replace `index_dir` by the finished staging dir; the old index is removed last."""
    old = None
    if index_dir.exists():
        old = index_dir.with_name(f"{index_dir.name}.old-{int(time.time())}")
        os.replace(index_dir, old)
    os.replace(staging, index_dir)
    (index_dir / PROGRESS).unlink(missing_ok=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
