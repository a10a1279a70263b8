"""Which files an index may make chromaref read: its own corpus, and nothing else.

Index folders are shared between people and machines, so a row's uri is untrusted input:
without a check it could name any local file (copied into an output grid), a device, or an
object store behind a host the index chose. A reference is therefore read only when its file
lies under the corpus root recorded at build time (`manifest["corpus"]`), with that root's
scheme; `..` segments and, for local corpora, symbolic links that resolve outside the root are
refused.

Filesystem options (`?endpoint_override=host&scheme=http`), credentials in the uri
(`key:secret@bucket`) and schemes whose authority is a host (`hdfs://host:port`) decide where
chromaref connects, so they are taken from an index only when the user trusts it:
`Index.open(path, trust=True)`, or the index folder listed in $CHROMAREF_TRUSTED_INDEXES.
An untrusted index may still name `s3://bucket/...` or `gs://bucket/...` roots: those are read
with pyarrow's defaults, i.e. the user's own environment (credentials, region), at the
provider's own endpoint.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import SplitResult, parse_qsl, urlsplit

import pyarrow.fs as pafs

from chromaref.platform.errors import FileError, IndexFileError
from chromaref.retrieval.storage import Location, locate

TRUSTED_ENV = "CHROMAREF_TRUSTED_INDEXES"
BUCKET_SCHEMES = frozenset({"s3", "gs", "gcs"})  # the authority names a bucket, not a host
_LOCAL_SCHEMES = frozenset({"", "file"})
_TRUST_HINT = (
    f"open the index with trust (`colorize --trust-index`, Index.open(path, trust=True), or "
    f"list its folder in ${TRUSTED_ENV}) only if you built it or trust where it came from"
)


def trusted_by_user(index_dir: str | os.PathLike[str]) -> bool:
    """Whether the user listed `index_dir` in $CHROMAREF_TRUSTED_INDEXES (os.pathsep-separated)."""
    listed = [p for p in os.environ.get(TRUSTED_ENV, "").split(os.pathsep) if p.strip()]
    wanted = Path(index_dir).resolve()
    return any(Path(p).expanduser().resolve() == wanted for p in listed)


def _split(text: str) -> SplitResult:
    """A location as URI parts; a local path has an empty scheme and is not parsed further."""
    if "://" not in text:
        return SplitResult("", "", text, "", "")
    return urlsplit(text)


def _within(path: str, root: str) -> bool:
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root if root.endswith("/") else root + "/")


@dataclass(frozen=True)
class CorpusRoot:
    """The corpus an index was built from, as the one place its rows may be read from.

    `text` is the canonical root recorded in the manifest: a resolved local path or a URI.
    `origin` names the manifest in error messages.
    """

    text: str
    trust: bool = False
    origin: str = "manifest.json"

    @cached_property
    def _parts(self) -> SplitResult:
        return _split(self.text)

    @cached_property
    def _real_root(self) -> str:
        return os.path.realpath(self._parts.path)

    def check(self) -> None:
        """Refuse a root from which no reference may be read at this trust level.

        Raises:
            IndexFileError: (naming the manifest) the root is not absolute, or an untrusted
                index asks for filesystem options, credentials or a host.
        """
        parts = self._parts
        if parts.scheme in _LOCAL_SCHEMES:
            if parts.netloc or parts.query or not posixpath.isabs(parts.path):
                raise IndexFileError(self.origin, f"corpus root {self.text!r} is not absolute")
            return
        if self.trust:
            return
        if parts.query:
            options = ", ".join(sorted({k for k, _ in parse_qsl(parts.query)})) or parts.query
            reason = f"sets filesystem options ({options})"
        elif "@" in parts.netloc:
            reason = "carries credentials"
        elif parts.scheme not in BUCKET_SCHEMES:
            reason = f"names a host ({parts.scheme}://{parts.netloc})"
        else:
            return
        raise IndexFileError(
            self.origin,
            f"its corpus root {parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path} "
            f"{reason}, which chromaref does not take from an untrusted index; {_TRUST_HINT}",
        )

    def resolve(self, file: str) -> str:
        """`file` (a row's file location) as it will be read: a real local path, or the URI.

        Raises:
            FileError: (naming `file`) it is not under the root, or the root is refused.
        """
        self.check()
        root, target = self._parts, _split(file)
        if target.scheme != root.scheme:
            raise FileError(file, f"refused: not on the filesystem of the corpus ({self.text})")
        if (target.netloc, target.query, target.fragment) != (root.netloc, root.query, ""):
            raise FileError(file, f"refused: another bucket, host or options than {self.text}")
        if {".", ".."} & set(target.path.split("/")):
            raise FileError(file, "refused: the path contains '.' or '..' segments")
        if root.scheme not in _LOCAL_SCHEMES:
            if not _within(target.path, root.path):
                raise FileError(file, f"refused: outside the index's corpus root {self.text}")
            return file
        if not posixpath.isabs(target.path):
            raise FileError(file, "refused: not an absolute path")
        real_root = self._real_root
        real = os.path.realpath(target.path)
        if not _within(real, real_root):
            how = " through a symbolic link" if _within(target.path, root.path) else ""
            raise FileError(file, f"refused: outside the index's corpus root {root.path}{how}")
        return real

    def locate(self, file: str) -> Location:
        """Where to read `file` from, once `resolve` allowed it (see there for errors)."""
        resolved = self.resolve(file)
        if self._parts.scheme in _LOCAL_SCHEMES:
            return Location(pafs.LocalFileSystem(), resolved)
        return locate(resolved)
