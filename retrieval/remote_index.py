"""An index in an object store: publish a finished local build, fetch one for search.

    chromaref index build photos/ --out "s3://bucket/indexes/photos?endpoint_override=minio:9000"
    Index.open("s3://bucket/indexes/photos?endpoint_override=minio:9000")

A store has no rename, so manifest.json is the commit marker: `publish` deletes the old
manifest first, uploads every other file, deletes what the old index had and the new one has
not, and uploads the manifest last. A reader finds a complete index or "no index here", never
half of one (one that started on the previous version finds checksums changed and stops with
the damaged-file error). `fetch` downloads the files a search uses (not the shards) into the
local cache, in a folder named by the manifest's sha256 (which covers its created time and
every file's checksum): the same version is downloaded once per machine, a new build gets a
new folder, and processes fetching together each finish their own copy and keep the first.
Each fetch marks its folder as the newest copy of its source URI and deletes that source's
copies older than the last `KEEP_VERSIONS` (a running replica may still read the one before),
so a Retriever that follows republished indexes does not fill its disk.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from chromaref.platform.errors import ConfigError, IndexFileError
from chromaref.platform.files import atomic_path
from chromaref.retrieval import store
from chromaref.retrieval.storage import Location, cache_dir, download, locate, upload

logger = logging.getLogger(__name__)

KEEP_VERSIONS = 2  # cached copies kept per source URI: the newest and the one before it
_SOURCES = ".sources"  # in a cached copy: one empty file per source URI it is a version of

# What a build writes into an index folder (as `store` names them); nothing else is uploaded,
# and a prefix holding anything else is never overwritten.
_BUILD_NAMES = re.compile(
    r"shards/shard-\d{5,}\.parquet|"
    + "|".join(re.escape(name) for name in (store.MANIFEST, *store.SEARCH_FILES))
)


def is_remote(location: str | os.PathLike[str]) -> bool:
    """Whether `location` is a URI of a non-local filesystem (s3://, gs://, hdfs://...).

    Raises:
        ConfigError: a URI that pyarrow cannot open.
    """
    text = str(location)
    return "://" in text and not locate(text).is_local


def local_build_dir(dest: str) -> Path:
    """Where an index for the URI `dest` is built before its upload: the same folder for the
    same URI, so a killed build resumes from its finished shards."""
    return cache_dir() / "uploads" / hashlib.sha1(dest.encode()).hexdigest()[:16] / "index"


def _cached(manifest: bytes) -> Path:
    return cache_dir() / "indexes" / f"remote-{hashlib.sha256(manifest).hexdigest()[:16]}"


def check_replaceable(dest: Location) -> list[str]:
    """The objects (relative names) of a previous index or upload under `dest`.

    Raises:
        ConfigError: `dest` is an object, or holds anything an index build did not write.
    """
    kind = dest.kind()
    if kind == "file":
        raise ConfigError(f"{dest} is an object, not a prefix; choose a prefix for the index")
    names = ["/".join(dest.relative_parts(f)) for f in dest.files()] if kind == "dir" else []
    foreign = [name for name in names if not _BUILD_NAMES.fullmatch(name)]
    if foreign:
        raise ConfigError(
            f"{dest} holds {', '.join(foreign[:3])}, which an index build did not write; "
            "choose an empty or new prefix for the index"
        )
    return names


def publish(local: Path, dest: Location) -> None:
    """Upload the finished index folder `local` to `dest`, manifest last, then move it into the
    fetch cache (opening `dest` on this machine needs no download).

    Raises:
        ConfigError: `dest` holds other objects, or the store refused a read or write (it then
            holds no manifest: readers see no index; rerun the build).
    """
    old = check_replaceable(dest)
    names = [p.relative_to(local).as_posix() for p in sorted(local.rglob("*")) if p.is_file()]
    files = [name for name in names if _BUILD_NAMES.fullmatch(name) and name != store.MANIFEST]
    try:
        if store.MANIFEST in old:
            dest.filesystem.delete_file(dest.join(store.MANIFEST).path)
        for name in files:
            upload(local / name, dest.join(name))
        for name in sorted(set(old) - set(files) - {store.MANIFEST}):
            dest.filesystem.delete_file(dest.join(name).path)
        upload(local / store.MANIFEST, dest.join(store.MANIFEST))
    except OSError as exc:
        raise ConfigError(
            f"uploading the index to {dest} failed ({exc}); it has no {store.MANIFEST} there, "
            "so no reader will use it: rerun the build"
        ) from None
    logger.info("index uploaded to %s (%d files, manifest last)", dest, len(files) + 1)
    cached = _cached((local / store.MANIFEST).read_bytes())
    if cached.exists():
        shutil.rmtree(local)
    else:
        cached.parent.mkdir(parents=True, exist_ok=True)
        os.replace(local, cached)
    _keep_newest(cached, dest)


def fetch(source: Location) -> Path:
    """A local, checked copy of the index published at `source` (see the module docstring).

    Raises:
        ConfigError: no manifest there (not an index, or an upload that never finished), or
            the store cannot be read.
        IndexFileError: (naming the object) a file is missing from the store or does not
            match the manifest; IndexMismatchError: another index format.
    """
    manifest_at = source.join(store.MANIFEST)
    try:
        if manifest_at.kind() != "file":
            raise ConfigError(
                f"{source} is not a chromaref index: no {store.MANIFEST} in the store (an "
                "upload that did not finish leaves none: rerun the build); build one with "
                "`chromaref index build CORPUS --out URI`"
            )
        manifest = manifest_at.read(limit=store.MAX_MANIFEST_BYTES)
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc}") from None
    folder = _cached(manifest)
    if (folder / store.MANIFEST).is_file():
        _keep_newest(folder, source)
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    try:
        for name in store.SEARCH_FILES:
            _download(source.join(name), partial / name)
        with atomic_path(partial / store.MANIFEST) as tmp:
            tmp.write_bytes(manifest)
        store.verify_files(partial, store.read_manifest(partial), store.SEARCH_FILES)
        os.rename(partial, folder)
    except IndexFileError as exc:
        if not exc.path.startswith(str(partial)):
            raise
        name = Path(exc.path).relative_to(partial).as_posix()
        raise IndexFileError(source.join(name), exc.reason) from None
    except OSError as exc:
        if not (folder / store.MANIFEST).is_file():  # else another process fetched it first
            raise ConfigError(f"cannot write the index cache {folder}: {exc}") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    logger.info("index %s fetched into %s", source, folder)
    _keep_newest(folder, source)
    return folder


def _keep_newest(folder: Path, source: Location) -> None:
    """Mark the cached copy `folder` as `source`'s newest, and delete the copies of `source`
    older than the last `KEEP_VERSIONS` (one that another source still names stays)."""
    key = hashlib.sha1(source.without_options().encode()).hexdigest()[:16]
    try:
        mark = folder / _SOURCES / key
        mark.parent.mkdir(exist_ok=True)
        mark.touch()  # its time is this copy's last use for `source`
        marks = sorted(
            folder.parent.glob(f"remote-*/{_SOURCES}/{key}"),
            key=lambda m: m.stat().st_mtime_ns,
            reverse=True,
        )
        for old in marks[KEEP_VERSIONS:]:
            old.unlink()
            if not any(old.parent.iterdir()):
                shutil.rmtree(old.parent.parent)
                logger.info("deleted %s, an older copy of the index %s", old.parent.parent, source)
    except OSError as exc:  # another process pruned first; a full disk: the fetch still holds
        logger.debug("could not prune the index cache: %s", exc)


def _download(source: Location, local: Path) -> None:
    try:
        with atomic_path(local) as tmp:
            download(source, tmp)
    except FileNotFoundError:
        reason = "missing from the store: the index is incomplete; rebuild it"
        raise IndexFileError(source, reason) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc}") from None
