"""The zero-configuration index: the bundled reference photos, built on first use.

A newcomer's `chromaref colorize photo.jpg --auto` works offline: the first call indexes the
photos shipped in the package (in-process, no Ray, a few seconds) into a cache directory;
later calls open it. The directory name carries the model id, so new weights rebuild it.
Processes starting together build it once: the others wait on its lock, then open it. A
cached index that fails its checks is rebuilt, once, with a warning. Being small, it is
checked in full at each open: every file's sha256, every row's digest, and that its corpus
is the bundled photos' folder of this installation (a moved venv or new photos rebuild it).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

from chromaref.platform.assets import photos_dir
from chromaref.platform.errors import ChromarefError, ConfigError, IndexFileError
from chromaref.platform.locks import exclusive
from chromaref.retrieval import store
from chromaref.retrieval.build import BuildConfig, build_index
from chromaref.retrieval.descriptors import DescriptorExtractor
from chromaref.retrieval.index import Index
from chromaref.retrieval.storage import CACHE_ENV, cache_dir, locate

logger = logging.getLogger(__name__)
WAIT_S = 600.0  # for another process's first-use build (seconds, even on a slow machine)


def _open_checked(path: Path, extractor: DescriptorExtractor) -> Index:
    """The cached index, if it passes every check, including those a search would run late.

    Raises:
        ChromarefError: it does not exist, is damaged, or indexes another folder.
    """
    index = Index.open(path, extractor=extractor)
    photos = str(locate(photos_dir()))  # as `finalize_index` records a local corpus
    if index.manifest["corpus"] != photos:
        raise IndexFileError(
            path / store.MANIFEST,
            f"it indexes {index.manifest['corpus']}, not the bundled photos in {photos}",
        )
    store.verify_files(path, index.manifest)
    index.check_every_row()
    return index


def _clear(path: Path, problem: ChromarefError) -> None:
    """Delete an unusable cached index, but only if it holds nothing a build did not write.

    Raises:
        ConfigError: it holds something else (a link, a user's file): it is left alone.
    """
    foreign = ["the folder is a link"] if path.is_symlink() else store.foreign_entries(path)
    if foreign:
        raise ConfigError(
            f"the cached default index {path} cannot be used ({problem}) and holds "
            f"{', '.join(foreign[:3])}, which chromaref did not write, so it is not deleted; "
            f"move it away, set {CACHE_ENV} to another folder, or pass --index"
        )
    logger.warning("the cached default index cannot be used (%s); rebuilding it", problem)
    shutil.rmtree(path)


def default_index() -> Index:
    """Open the bundled-corpus index, building (or rebuilding a damaged one) first if needed.

    Raises:
        LockHeldError: another process kept building it for longer than `WAIT_S`.
        ConfigError: it could not be built.
    """
    extractor = DescriptorExtractor()
    tag = hashlib.sha1(extractor.model_id.encode()).hexdigest()[:12]
    path = cache_dir() / "indexes" / f"bundled-{tag}"
    try:
        return _open_checked(path, extractor)
    except ChromarefError:
        pass  # not built yet, being built, or damaged: decide under the lock
    hint = "if that process hangs, stop it and retry"
    with exclusive(path, wait=WAIT_S, hint=hint):
        try:
            return _open_checked(path, extractor)  # another process just built it
        except ChromarefError as exc:
            problem = exc
        if path.is_symlink() or (path.is_dir() and any(path.iterdir())):
            _clear(path, problem)
        else:
            logger.warning("indexing the bundled reference photos into %s (first use)", path)
        try:
            build_index(photos_dir(), path, config=BuildConfig(runner="local"))
            return _open_checked(path, extractor)
        except (ChromarefError, OSError) as exc:
            raise ConfigError(
                f"could not build the default index in {path}: {exc}; delete that folder and "
                f"retry, set {CACHE_ENV} to another folder, or pass --index"
            ) from None


def open_index(path: str | os.PathLike[str] | None, *, trust: bool = False) -> Index:
    """The index at `path` (a folder, or an object-store URI: fetched into the local cache by
    `Index.open`), or with none the bundled photos' index (built on first use).

    Raises:
        ConfigError, IndexMismatchError, IndexFileError: as `Index.open` and `default_index`.
    """
    return Index.open(path, trust=trust) if path else default_index()
