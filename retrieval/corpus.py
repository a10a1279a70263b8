"""Corpus readers: folder trees, Parquet datasets of image bytes, and tar shards, on a local
disk or an object store (s3://, gs://, hdfs://: see `chromaref.retrieval.storage`).

A corpus is listed once into `CorpusItem`s (cheap: no pixels are read), each with a stable id
derived from its location, so a rerun plans the same shards and resumes where it stopped.
Bytes are read later, inside the decode tasks, wherever those run.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from chromaref.platform.errors import ChromarefError, ConfigError, FileError, ImageLoadError
from chromaref.platform.images import IMAGE_SUFFIXES, MAX_PIXELS_ENV, max_pixels_limit
from chromaref.retrieval.confine import CorpusRoot
from chromaref.retrieval.storage import Location, locate

if TYPE_CHECKING:
    import pyarrow.parquet as pq

PARQUET_BYTES_COLUMNS = ("image", "bytes", "image_bytes", "content")
# Largest encoded image read: 8 bytes a pixel (16-bit RGBA stored raw, the most a decodable
# image needs) at the pixel limit, plus 1 MiB for headers, EXIF and ICC profiles.
BYTES_PER_PIXEL = 8
HEADER_BYTES = 1 << 20
_SECRET_OPTION = re.compile(r"secret|password|token|credential|access_key", re.IGNORECASE)
_HINT = f" (the cap for one image; set {MAX_PIXELS_ENV} to raise it)"


@dataclass(frozen=True)
class CorpusItem:
    """One image of a corpus: where it is, and its class label when the layout gives one."""

    id: str
    uri: str
    label: str | None = None


def item_id(uri: str) -> str:
    """Stable id from the location, so a resumed build recognises what it already did."""
    return hashlib.sha1(uri.encode()).hexdigest()[:16]


def _item(uri: str, label: str | None) -> CorpusItem:
    return CorpusItem(id=item_id(uri), uri=uri, label=label)


def _list_folder(root: Location) -> list[CorpusItem]:
    """Recursive image files; `CLASS/file` (ImageNet layout) gives the label CLASS."""
    items = []
    for file in root.files():
        if Path(file.name).suffix.lower() in IMAGE_SUFFIXES:
            parts = root.relative_parts(file)
            items.append(_item(str(file), parts[0] if len(parts) > 1 else None))
    return items


def _list_parquet(files: list[Location]) -> list[CorpusItem]:
    """Rows of Parquet files, read from the footer and the label column only (never the
    image bytes), one row group at a time."""
    import pyarrow.parquet as pq

    items = []
    for file in files:
        with file.open() as f:
            parquet = pq.ParquetFile(f)
            names = parquet.schema_arrow.names
            declared = _declared_bytes(parquet.metadata, _bytes_column(names, file))
            limit = max_image_bytes()
            for problem in (_group_too_large(g, n, limit) for g, n in enumerate(declared)):
                if problem:
                    raise ConfigError(f"{file}: {problem}")
            items += [
                _item(f"parquet://{file}#{row}", None if label is None else str(label))
                for row, label in enumerate(_labels(parquet, "label" in names))
            ]
    return items


def _labels(parquet: pq.ParquetFile, labelled: bool) -> Iterator[object]:
    """Each row's label (None without a label column), one row group in memory at a time."""
    for group in range(parquet.num_row_groups):
        if labelled:
            yield from parquet.read_row_group(group, columns=["label"])["label"].to_pylist()
        else:
            yield from repeat(None, parquet.metadata.row_group(group).num_rows)


def _bytes_column(names: list[str], file: Location | str) -> str:
    for name in PARQUET_BYTES_COLUMNS:
        if name in names:
            return name
    raise ConfigError(
        f"{file}: no image bytes column; expected one of {', '.join(PARQUET_BYTES_COLUMNS)}"
    )


def _list_tar(files: list[Location]) -> list[CorpusItem]:
    """Members of tar shards, addressed by byte offset so reads need no re-scan."""
    items = []
    for file in files:
        try:
            with file.open() as f, tarfile.open(fileobj=f) as archive:
                for member in archive:
                    if member.isfile() and Path(member.name).suffix.lower() in IMAGE_SUFFIXES:
                        parts = Path(member.name).parts
                        label = parts[-2] if len(parts) > 1 else None
                        uri = f"tar://{file}#{member.offset_data}:{member.size}"
                        items.append(_item(uri, label))
        except tarfile.TarError as exc:
            raise ConfigError(f"{file}: not a readable tar archive ({exc})") from exc
    return items


def refuse_credentials(source: str | Path) -> None:
    """Refuse a corpus URI that carries credentials (`s3://key:secret@bucket/...`, or a
    secret in its options): every item's uri, the shards and the manifest would record them.

    Raises:
        ConfigError: naming the URI without its credentials.
    """
    parts = urlsplit(str(source)) if "://" in str(source) else None
    if parts is None:
        return
    secrets = [k for k, _ in parse_qsl(parts.query) if _SECRET_OPTION.search(k)]
    if "@" in parts.netloc or secrets:
        shown = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"
        raise ConfigError(
            f"corpus {shown}: the URI carries credentials, which an index would record; "
            "remove them and use the environment or a profile instead (AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, GOOGLE_APPLICATION_CREDENTIALS, ...)"
        )


def list_corpus(source: str | Path) -> list[CorpusItem]:
    """Every image of a folder tree, a Parquet file/dataset, or tar shard(s), in stable order;
    `source` is a local path or a filesystem URI (see `chromaref.retrieval.storage`).

    Raises:
        ConfigError: the source does not exist, is not a corpus, or carries credentials.
    """
    refuse_credentials(source)
    root = locate(source)
    kind = root.kind()
    if kind == "missing":
        raise ConfigError(f"corpus {source} does not exist")
    if kind == "file" and root.name.endswith((".parquet", ".tar")):
        files = [root]
    elif kind == "dir":
        files = root.files()
    else:
        raise ConfigError(f"corpus {source}: expected a folder, a .parquet file or a .tar file")
    top_level = [f for f in files if len(root.relative_parts(f)) == 1] if kind == "dir" else files
    if any(f.name.endswith(".parquet") for f in top_level):
        return _list_parquet([f for f in files if f.name.endswith(".parquet")])
    if any(f.name.endswith(".tar") for f in top_level):
        return _list_tar([f for f in files if f.name.endswith(".tar")])
    return _list_folder(root)


def max_image_bytes() -> int:
    """The byte cap for one image, derived from the pixel limit ($CHROMAREF_MAX_PIXELS)."""
    return max_pixels_limit() * BYTES_PER_PIXEL + HEADER_BYTES


@dataclass(frozen=True)
class _ParquetFile:
    """What reading one row needs: the bytes column and the row groups' extent and size."""

    column: str
    starts: tuple[int, ...]  # first row of each row group, then the total row count
    declared: tuple[int, ...]  # bytes of the column that each row group declares


@contextmanager
def _parquet_errors(file: str) -> Iterator[None]:
    import pyarrow as pa

    try:
        yield
    except ChromarefError:
        raise
    except (pa.ArrowException, ValueError) as exc:
        raise FileError(file, f"not a readable Parquet file ({exc})") from None


def _declared_bytes(meta, column: str) -> tuple[int, ...]:
    """Per row group, the larger of the compressed and uncompressed bytes its footer declares
    for `column`: what reading that group's column costs (pyarrow reads a group whole)."""
    groups = [meta.row_group(g) for g in range(meta.num_row_groups)]
    return tuple(
        sum(
            max(chunk.total_compressed_size, chunk.total_uncompressed_size)
            for chunk in (group.column(leaf) for leaf in range(group.num_columns))
            if chunk.path_in_schema.split(".")[0] == column
        )
        for group in groups
    )


def _group_too_large(group: int, size: int, limit: int) -> str:
    """Why row group `group` (declaring `size` bytes) is not read ('' when it may be)."""
    if size <= limit:
        return ""
    return (
        f"row group {group} declares {size} bytes of images, more than the {limit} one read "
        f"may use{_HINT}; rewrite the file with smaller row groups (pyarrow: row_group_size)"
    )


@lru_cache(maxsize=16)
def _parquet_file(file: str) -> _ParquetFile:
    import pyarrow.parquet as pq

    with _parquet_errors(file), locate(file).open() as f:
        meta = pq.ParquetFile(f).metadata
        column = _bytes_column(meta.schema.to_arrow_schema().names, file)
        declared = _declared_bytes(meta, column)
        starts = [0]
        for group in range(meta.num_row_groups):
            starts.append(starts[-1] + meta.row_group(group).num_rows)
    return _ParquetFile(column, tuple(starts), declared)


# The last row group read, as Arrow (not Python) values: decode tasks read a file's rows in
# order, so a file is read once, not once per row. One group at most, of at most the cap.
_GROUP: dict[tuple[str, int, str], object] = {}
_GROUP_LOCK = threading.Lock()


def _group_value(location: Location, key: tuple[str, int, str], offset: int) -> object:
    import pyarrow.parquet as pq

    with _GROUP_LOCK:
        if key not in _GROUP:
            _GROUP.clear()  # release the previous group before reading the next
            with location.open() as f:
                table = pq.ParquetFile(f).read_row_group(key[1], columns=[key[2]])
            _GROUP[key] = table[key[2]]
        return _GROUP[key][offset].as_py()


def _parquet_value(location: Location, row: int, limit: int) -> bytes:
    """Row `row`'s image bytes; a row group whose footer declares more than `limit` bytes is
    refused before it is read, and so is a value longer than `limit`."""
    file = str(location)
    meta = _parquet_file(file)
    if not 0 <= row < meta.starts[-1]:
        raise FileError(file, f"has no row {row} (it holds {meta.starts[-1]})")
    group = bisect.bisect_right(meta.starts, row) - 1
    problem = _group_too_large(group, meta.declared[group], limit)
    if problem:
        raise FileError(file, problem)
    with _parquet_errors(file):
        value = _group_value(location, (file, group, meta.column), row - meta.starts[group])
    value = value.get("bytes") if isinstance(value, dict) else value
    if not isinstance(value, bytes):
        raise FileError(file, f"row {row} holds no image bytes")
    if len(value) > limit:
        raise FileError(file, f"row {row} holds {len(value)} bytes, more than {limit}{_HINT}")
    return value


def parse_uri(uri: str) -> tuple[str, str, tuple[int, ...]]:
    """(kind, file location, numbers) of a corpus uri: ('file', LOCATION, ()),
    ('parquet', LOCATION, (row,)) or ('tar', LOCATION, (offset, length))."""
    for kind, count in (("parquet", 1), ("tar", 2)):
        if uri.startswith(f"{kind}://"):
            file, _, numbers = uri[len(kind) + 3 :].rpartition("#")
            try:
                values = tuple(int(v) for v in numbers.split(":"))
            except ValueError:
                values = ()
            if not file or len(values) != count:
                raise FileError(uri, f"malformed {kind}:// uri")
            return kind, file, values
    return "file", uri, ()


def read_bytes(uri: str, *, root: CorpusRoot | None = None) -> bytes:
    """The encoded image behind a corpus uri: a file location, parquet://LOCATION#row or
    tar://LOCATION#offset:length.

    Every read is bounded before it starts (by `max_image_bytes` and the file's size); with
    `root`, the file must lie under that corpus root (see `chromaref.retrieval.confine`).

    Raises:
        ImageLoadError: (naming `uri`) it is refused, malformed, or names bytes outside its
            file or beyond the cap.
        OSError: the file cannot be read.
    """
    limit = max_image_bytes()
    try:
        kind, file, numbers = parse_uri(uri)
        location = root.locate(file) if root is not None else locate(file)
        if kind == "parquet":
            return _parquet_value(location, numbers[0], limit)
        return location.read(*numbers, limit=limit, limit_hint=_HINT)
    except FileError as exc:
        raise ImageLoadError(uri, exc.reason) from None
