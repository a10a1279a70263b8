"""Where corpus files live: local paths or object-store URIs, behind one small interface.

A location is either a local path or a URI that `pyarrow.fs` understands (`s3://bucket/key`,
`gs://bucket/key`, `hdfs://host:port/path`, `file:///path`), with the filesystem's options in
the query string (`s3://bucket/corpus?endpoint_override=minio:9000&scheme=http`). Credentials
come from the usual environment (AWS_ACCESS_KEY_ID, GOOGLE_APPLICATION_CREDENTIALS, ...).
Decode tasks read by location wherever they run, so a Ray cluster reads a bucket directly.
Whole files move between a local folder and a store with `upload` and `download` (an index
published to a bucket, a model file); `cache_dir` is where local copies are kept.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO
from urllib.parse import SplitResult, parse_qsl, urlsplit, urlunsplit

import pyarrow.fs as pafs

from chromaref.platform.errors import ConfigError, FileError

_PATH_ONLY_SCHEMES = frozenset({"file", "hdfs", "viewfs"})  # the host is not part of the path
CACHE_ENV = "CHROMAREF_CACHE"
_COPY_BLOCK = 8 << 20  # bytes per read when copying a file to or from a store


def cache_dir() -> Path:
    """`$CHROMAREF_CACHE`, else `$XDG_CACHE_HOME/chromaref`, else `~/.cache/chromaref`."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "chromaref"


@dataclass(frozen=True)
class Location:
    """A file or folder on some filesystem, printable back into the string it came from."""

    filesystem: pafs.FileSystem
    path: str
    root: str = ""  # "scheme://netloc?query" for URIs, "" for local paths

    def __str__(self) -> str:
        if not self.root:
            return self.path
        parts = urlsplit(self.root)
        path = self.path if parts.scheme in _PATH_ONLY_SCHEMES else self.path[len(_bucket(parts)) :]
        return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))

    def child(self, path: str) -> Location:
        """Another path on the same filesystem."""
        return Location(self.filesystem, path, self.root)

    def join(self, name: str) -> Location:
        """`name` (may hold "/") below this folder; the options stay in the printed URI."""
        return self.child(f"{self.path.rstrip('/')}/{name}")

    def parent(self) -> Location:
        return self.child(self.path.rstrip("/").rsplit("/", 1)[0] or "/")

    @property
    def options(self) -> dict[str, str]:
        """The filesystem options of a URI's query string (`endpoint_override`, `scheme`, ...)."""
        return dict(parse_qsl(urlsplit(self.root).query))

    def endpoint_url(self) -> str | None:
        """The `http(s)://host:port` of an S3-compatible store behind `endpoint_override`,
        for clients other than pyarrow (boto3 in MLflow); None for the provider's own."""
        endpoint = self.options.get("endpoint_override")
        if not endpoint or "://" in endpoint:
            return endpoint
        return f"{self.options.get('scheme', 'https')}://{endpoint}"

    def without_options(self) -> str:
        """The URI without its query string (`s3://bucket/key`), as other clients name it."""
        return str(self).split("?", 1)[0]

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def kind(self) -> str:
        """'file', 'dir' or 'missing'."""
        found = self.filesystem.get_file_info(self.path).type
        return {pafs.FileType.File: "file", pafs.FileType.Directory: "dir"}.get(found, "missing")

    def files(self) -> list[Location]:
        """Every file below this folder, recursively, sorted by path."""
        selector = pafs.FileSelector(self.path, recursive=True)
        found = self.filesystem.get_file_info(selector)
        return [self.child(f.path) for f in sorted(found, key=lambda f: f.path) if f.is_file]

    def relative_parts(self, descendant: Location) -> tuple[str, ...]:
        return tuple(descendant.path[len(self.path.rstrip("/")) + 1 :].split("/"))

    @property
    def is_local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def open(self) -> BinaryIO:
        """A seekable binary file (remote files read ranges on demand).

        A local path must be a regular file: a device (/dev/zero) or a FIFO is refused before
        anything is read, and opening never blocks (O_NONBLOCK, which regular files ignore).

        Raises:
            FileError: a local path that is not a regular file.
            OSError: the file cannot be opened.
        """
        if not self.is_local:
            return self.filesystem.open_input_file(self.path)
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise FileError(self.path, "not a regular file (a device, FIFO or folder)")
        return os.fdopen(fd, "rb")

    def read(
        self, offset: int = 0, size: int | None = None, *, limit: int, limit_hint: str = ""
    ) -> bytes:
        """Bytes [offset, offset + size) of the file (to its end when `size` is None).

        The span is checked against the file's size and `limit` before a byte is read, so a
        crafted span (or a huge file) costs nothing.

        Raises:
            FileError: the span lies outside the file, is longer than `limit`, or the file
                changed while it was read.
            OSError: the file cannot be read.
        """
        with self.open() as f:
            total = f.seek(0, os.SEEK_END)
            size = total - offset if size is None else size
            if offset < 0 or size < 0 or offset + size > total:
                raise FileError(
                    self, f"bytes {offset}..{offset + size} lie outside the file ({total} bytes)"
                )
            if size > limit:
                raise FileError(self, f"{size} bytes to read, more than {limit}{limit_hint}")
            f.seek(offset)
            data = f.read(size)
        if len(data) != size:
            raise FileError(self, f"read {len(data)} of {size} bytes: the file changed")
        return data


def upload(local: Path, dest: Location) -> None:
    """Copy a local file to `dest`. An object store shows an object only once it is complete
    (a PUT, or the last part of a multipart upload), so no reader sees half of it.

    Raises:
        OSError: the file cannot be read or the store refuses the write.
    """
    with open(local, "rb") as source, dest.filesystem.open_output_stream(dest.path) as out:
        shutil.copyfileobj(source, out, _COPY_BLOCK)


def download(source: Location, local: Path) -> None:
    """Copy `source` to a new local file at `local` (the caller's temporary name).

    Raises:
        FileNotFoundError: `source` does not exist.
        OSError: it cannot be read, or `local` cannot be written.
    """
    with source.filesystem.open_input_stream(source.path) as stream, open(local, "wb") as out:
        shutil.copyfileobj(stream, out, _COPY_BLOCK)


@lru_cache(maxsize=32)
def _remote_filesystem(root: str) -> pafs.FileSystem:
    return pafs.FileSystem.from_uri(root)[0]


def locate(location: str | Path) -> Location:
    """Parse a local path or filesystem URI.

    Raises:
        ConfigError: the URI names a filesystem pyarrow cannot open (unknown scheme, bad
            options, missing client library).
    """
    text = str(location)
    if "://" not in text:
        return Location(pafs.LocalFileSystem(), str(Path(text).resolve()))
    parts = urlsplit(text)
    root = urlunsplit((parts.scheme, parts.netloc, "", parts.query, ""))
    try:
        filesystem = _remote_filesystem(root)
    except (OSError, ValueError, NotImplementedError) as exc:  # pyarrow's Arrow* errors
        raise ConfigError(f"cannot open {text}: {exc}") from exc
    if parts.scheme in _PATH_ONLY_SCHEMES:
        path = parts.path
    else:
        path = (_bucket(parts) + parts.path).rstrip("/")
    return Location(filesystem, path, root)


def _bucket(parts: SplitResult) -> str:
    """The bucket of an object-store URI (`s3://key:secret@bucket/...` carries credentials)."""
    return parts.netloc.rsplit("@", 1)[-1]
