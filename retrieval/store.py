"""The index directory on disk: staged shards, a resumable progress log, the final layout.

    INDEX/                       (appears only when a build is complete)
      manifest.json              "format": "chromaref-index", format version, descriptor model
                                 id + weights hash, dims, counts, corpus root, sha256 + size of
                                 every file below, build parameters, created time
      semantic.faiss(.json)      FAISS index over the semantic vectors (row = position)
      rows.parquet               row -> id, uri, label, sha1, digest_<descriptor> (per row)
      semantic.npy luminance.npy local.npy   row-aligned descriptors (memory-mapped at search)
      shards/shard-NNNNN.parquet the build's canonical output, one file per planned shard
    INDEX.building/              staging: same shards + progress.jsonl while a build runs

Every file is written to a temporary name and renamed; a shard counts as done only when its
line in progress.jsonl names its checksum, so a killed build resumes without losing or
duplicating an image, and the previous INDEX stays usable until the new one replaces it.

An index folder may come from elsewhere, so everything in it is checked before use: one
reader, `read_manifest`, validates the manifest (and finds a truncated file by its size);
`verify_files` compares checksums; a build replaces only a folder that `why_not_replaceable`
proves to be a chromaref index holding nothing chromaref did not write.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chromaref.platform.errors import ConfigError, IndexFileError, IndexMismatchError
from chromaref.platform.files import atomic_path, atomic_write_text, sha256_file

logger = logging.getLogger(__name__)

FORMAT = "chromaref-index"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
PROGRESS = "progress.jsonl"
PLAN = "plan.json"
DESCRIPTOR_DTYPES = {"semantic": np.float32, "luminance": np.float16, "local": np.float16}
DESCRIPTOR_COLUMNS = tuple(DESCRIPTOR_DTYPES)
ROWS = "rows.parquet"
FAISS = "semantic.faiss"
# Every file a search uses; the manifest records the sha256 and size of each.
SEARCH_FILES = (ROWS, *(f"{name}.npy" for name in DESCRIPTOR_DTYPES), FAISS, FAISS + ".json")
NON_FINITE = "its descriptors are not finite (NaN or infinity)"
MAX_MANIFEST_BYTES = 256 << 20  # the skipped list of a 10^7-image corpus fits
_SHARD_FILE = r"shards/shard-\d{5,}\.parquet"
_TEMP_NAME = re.compile(r"\..+\.tmp")  # what `atomic_path` leaves when a build is killed


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
    with atomic_path(path) as tmp:  # no dictionaries for floats: 5x faster to write and read
        pq.write_table(table, tmp, use_dictionary=["label", "reason"])
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


def row_digests(values: np.ndarray) -> np.ndarray:
    """A 64-bit digest (truncated sha256) of each row's bytes, as uint64.

    rows.parquet keeps one per row and descriptor, so a search can check the few rows it reads
    of the memory-mapped arrays without hashing whole files.
    """
    width = int(np.prod(values.shape[1:], dtype=np.int64))
    flat = np.ascontiguousarray(values).reshape(len(values), width).view(np.uint8)
    return np.frombuffer(b"".join(hashlib.sha256(row).digest()[:8] for row in flat), "<u8")


# --- the manifest ------------------------------------------------------------------------------

_SHA256 = r"^[0-9a-f]{64}$"


class _FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    sha256: str = Field(pattern=_SHA256)
    bytes: int = Field(ge=0)


class _ShardEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    file: str = Field(pattern=f"^{_SHARD_FILE}$")
    sha256: str = Field(pattern=_SHA256)
    rows: int = Field(ge=0)


class _Manifest(BaseModel):
    """What reading an index relies on; the rest of manifest.json is a report."""

    model_config = ConfigDict(extra="allow", strict=True)

    format: Literal["chromaref-index"]
    format_version: int
    model_id: str = Field(min_length=1)
    corpus: str = Field(min_length=1)
    count: int = Field(ge=1)
    dims: dict[str, list[int]]
    files: dict[str, _FileEntry]
    shards: list[_ShardEntry]
    build: dict[str, object]


def file_entry(path: Path) -> dict[str, object]:
    """A manifest entry for a file: its sha256 and size."""
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def _load_json(path: Path) -> object:
    """A regular file of at most MAX_MANIFEST_BYTES, parsed as JSON."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise IndexFileError(path, "not a regular file")
        if info.st_size > MAX_MANIFEST_BYTES:
            raise IndexFileError(path, f"{info.st_size} bytes, more than a manifest may have")
        with open(path, "rb") as f:
            return json.loads(f.read(MAX_MANIFEST_BYTES + 1))
    except OSError as exc:
        raise IndexFileError(path, f"unreadable ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, absurd nesting
        raise IndexFileError(path, f"not valid JSON ({exc})") from None


def _is_legacy(manifest: object) -> bool:
    """A manifest of chromaref's format 1, which had no "format" field."""
    return (
        isinstance(manifest, dict)
        and "format" not in manifest
        and type(manifest.get("format_version")) is int
        and 0 < manifest["format_version"] < FORMAT_VERSION
        and isinstance(manifest.get("model_id"), str)
    )


def _validate(path: Path, manifest: object) -> dict:
    """The manifest at `path` if it is one of this format (see `read_manifest` for errors)."""
    if _is_legacy(manifest) or (
        isinstance(manifest, dict)
        and manifest.get("format") == FORMAT
        and manifest.get("format_version") != FORMAT_VERSION
    ):
        raise IndexMismatchError(
            f"{path.parent} has index format {manifest.get('format_version')}, this chromaref "
            f"reads format {FORMAT_VERSION}; rebuild it with `chromaref index build`"
        )
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexFileError(path, f'does not say "format": "{FORMAT}": not a chromaref index')
    try:
        checked = _Manifest.model_validate(manifest)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise IndexFileError(path, f"invalid manifest: {where}: {problem['msg']}") from None
    problems = [
        (sorted(checked.dims), sorted(DESCRIPTOR_DTYPES), "dims"),
        (sorted(checked.files), sorted(SEARCH_FILES), "files"),
    ]
    for got, wanted, field in problems:
        if got != wanted:
            raise IndexFileError(path, f"invalid manifest: {field} lists {got}, not {wanted}")
    if any(not 1 <= len(d) <= 3 or min(d) < 1 for d in checked.dims.values()):
        raise IndexFileError(path, f"invalid manifest: dims {checked.dims}")
    if not isinstance(checked.build.get("descriptor"), dict):
        raise IndexFileError(path, "invalid manifest: build.descriptor is missing")
    return manifest


def _check_size(path: Path, expected: int) -> None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise IndexFileError(path, "missing: the index is incomplete; rebuild it") from None
    except OSError as exc:
        raise IndexFileError(path, f"unreadable ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise IndexFileError(path, "not a regular file")
    if info.st_size != expected:
        raise IndexFileError(
            path,
            f"{info.st_size} bytes, but the manifest says {expected}: damaged or changed "
            "since the build; rebuild the index",
        )


def read_manifest(index_dir: str | os.PathLike[str]) -> dict:
    """The validated manifest of an index of this format whose search files all exist with
    their recorded sizes (a cheap `stat` each; checksums are `verify_files`' job).

    Raises:
        ConfigError: there is no manifest: not an index (or an unfinished build).
        IndexMismatchError: a chromaref index of another format version: rebuild it.
        IndexFileError: (naming the bad file) the manifest is not a valid chromaref manifest,
            or a file it lists is missing or of another size.
    """
    index_dir = Path(index_dir)
    path = index_dir / MANIFEST
    if not os.path.lexists(path):
        hint = (
            " (an unfinished build is in progress or was interrupted)"
            if staging_dir(index_dir).exists()
            else ""
        )
        raise ConfigError(
            f"{index_dir} is not a chromaref index: no {MANIFEST}{hint}; "
            "build one with `chromaref index build CORPUS --out DIR`"
        )
    manifest = _validate(path, _load_json(path))
    for name in SEARCH_FILES:
        _check_size(index_dir / name, manifest["files"][name]["bytes"])
    return manifest


def write_manifest(index_dir: Path, manifest: dict) -> None:
    """Validate (so a build never writes what `read_manifest` refuses) and write atomically."""
    write_json(index_dir / MANIFEST, _validate(index_dir / MANIFEST, manifest))


def is_index(index_dir: str | os.PathLike[str]) -> bool:
    """Whether `index_dir` holds a valid chromaref index of this format."""
    try:
        read_manifest(index_dir)
    except (ConfigError, IndexMismatchError, IndexFileError):
        return False
    return True


def verify_files(
    index_dir: str | os.PathLike[str], manifest: dict, names: Iterable[str] | None = None
) -> int:
    """Check files against the sha256 recorded in the manifest: `names`, or every file it
    lists (shards included). Returns the bytes read.

    Raises:
        IndexFileError: (naming the file) missing, unreadable or changed.
    """
    index_dir = Path(index_dir)
    wanted = {n: manifest["files"][n]["sha256"] for n in (SEARCH_FILES if names is None else names)}
    if names is None:
        wanted |= {s["file"]: s["sha256"] for s in manifest["shards"]}
    read = 0
    for name, digest in wanted.items():
        path = index_dir / name
        try:
            actual = sha256_file(path)
            read += path.stat().st_size
        except OSError as exc:
            raise IndexFileError(path, f"unreadable ({exc.strerror or exc})") from None
        if actual != digest:
            raise IndexFileError(
                path,
                "its sha256 does not match the manifest: damaged or changed since the build; "
                "rebuild the index",
            )
    return read


# --- replacing an index ------------------------------------------------------------------------


def foreign_entries(index_dir: Path) -> list[str]:
    """Entries of an index folder that a build does not write (links included)."""
    allowed = {MANIFEST, PLAN, PROGRESS, *SEARCH_FILES}
    foreign = []
    for entry in sorted(index_dir.iterdir()):
        if entry.is_symlink():
            foreign.append(entry.name)
        elif entry.name == "shards" and entry.is_dir():
            foreign += [
                f"shards/{e.name}"
                for e in sorted(entry.iterdir())
                if e.is_symlink()
                or not e.is_file()
                or not (
                    re.fullmatch(_SHARD_FILE, f"shards/{e.name}") or _TEMP_NAME.fullmatch(e.name)
                )
            ]
        elif not entry.is_file() or not (entry.name in allowed or _TEMP_NAME.fullmatch(entry.name)):
            foreign.append(entry.name)
    return foreign


def why_not_replaceable(index_dir: Path) -> str | None:
    """None when a build may delete `index_dir`: it does not exist, is an empty folder, or is
    provably a chromaref index (this format or an older one): its manifest names the format,
    the files it lists exist, and it holds nothing else. Otherwise, the reason.
    """
    if not os.path.lexists(index_dir):
        return None
    if index_dir.is_symlink() or not index_dir.is_dir():
        return "it is not a folder"
    if not any(index_dir.iterdir()):
        return None
    if not (index_dir / MANIFEST).is_file():
        return f"it has no {MANIFEST}"
    try:
        manifest = _load_json(index_dir / MANIFEST)
    except IndexFileError as exc:
        return f"its {MANIFEST} is {exc.reason}"
    ours = isinstance(manifest, dict) and manifest.get("format") == FORMAT
    if not (ours or _is_legacy(manifest)):
        return f'its {MANIFEST} does not say "format": "{FORMAT}"'
    missing = [name for name in SEARCH_FILES if not (index_dir / name).is_file()]
    foreign = foreign_entries(index_dir)
    if missing:
        return f"{missing[0]} is missing"
    if foreign:
        return f"it holds {', '.join(foreign[:3])}, which chromaref did not write"
    return None


def swap_into_place(staging: Path, index_dir: Path) -> None:
    """Replace `index_dir` by the finished staging dir; the old index is removed last.

    The old folder is checked again right before it is moved aside (it may have changed since
    the build started) and after (nothing is deleted that appeared meanwhile).

    Raises:
        ConfigError: `index_dir` is not a chromaref index; the new one stays in `staging`.
    """
    old = None
    if os.path.lexists(index_dir):
        reason = why_not_replaceable(index_dir)
        if reason:
            raise ConfigError(
                f"{index_dir} is not a chromaref index that a build may replace ({reason}); "
                f"the new index is left in {staging}"
            )
        old = index_dir.with_name(f"{index_dir.name}.old-{int(time.time())}")
        os.replace(index_dir, old)
    os.replace(staging, index_dir)
    (index_dir / PROGRESS).unlink(missing_ok=True)
    if old is None:
        return
    reason = why_not_replaceable(old)
    if reason:
        logger.warning("kept the previous index folder %s: %s", old, reason)
    else:
        shutil.rmtree(old, ignore_errors=True)
