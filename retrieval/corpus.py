"""Corpus readers: folder trees, Parquet datasets of image bytes, and tar shards, on a local
disk or an object store (s3://, gs://, hdfs://: see `chromaref.retrieval.storage`).

A corpus is listed once into `CorpusItem`s (cheap: no pixels are read), each with a stable id
derived from its location, so a rerun plans the same shards and resumes where it stopped.
Bytes are read later, inside the decode tasks, wherever those run.
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from chromaref.platform.errors import ConfigError
from chromaref.platform.images import IMAGE_SUFFIXES
from chromaref.retrieval.storage import Location, locate

PARQUET_BYTES_COLUMNS = ("image", "bytes", "image_bytes", "content")


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
    import pyarrow.parquet as pq

    items = []
    for file in files:
        with file.open() as f:
            meta = pq.ParquetFile(f)
            names = meta.schema_arrow.names
            _bytes_column(names, file)
            labels = (
                meta.read(columns=["label"])["label"].to_pylist()
                if "label" in names
                else [None] * meta.metadata.num_rows
            )
        items += [
            _item(f"parquet://{file}#{row}", None if label is None else str(label))
            for row, label in enumerate(labels)
        ]
    return items


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


def list_corpus(source: str | Path) -> list[CorpusItem]:
    """Every image of a folder tree, a Parquet file/dataset, or tar shard(s), in stable order;
    `source` is a local path or a filesystem URI (see `chromaref.retrieval.storage`).

    Raises:
        ConfigError: the source does not exist or is not a corpus.
    """
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


@lru_cache(maxsize=4)
def _parquet_column(file: str) -> list[bytes]:
    import pyarrow.parquet as pq

    with locate(file).open() as f:
        table = pq.read_table(f)
    return table[_bytes_column(table.schema.names, file)].to_pylist()


def read_bytes(uri: str) -> bytes:
    """The encoded image behind a corpus uri: a file location, parquet://LOCATION#row or
    tar://LOCATION#offset:length."""
    if uri.startswith("parquet://"):
        file, row = uri[len("parquet://") :].rsplit("#", 1)
        value = _parquet_column(file)[int(row)]
        return value["bytes"] if isinstance(value, dict) else value
    if uri.startswith("tar://"):
        file, span = uri[len("tar://") :].rsplit("#", 1)
        offset, size = (int(v) for v in span.split(":"))
        return locate(file).read(offset, size)
    return locate(uri).read()
