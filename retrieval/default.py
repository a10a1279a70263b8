"""The zero-configuration index: the bundled reference photos, built on first use.

A newcomer's `chromaref colorize photo.jpg --auto` works offline: the first call indexes the
photos shipped in the package (in-process, no Ray, a few seconds) into a cache directory;
later calls open it. The directory name carries the model id, so new weights rebuild it.
Processes starting together build it once: the others wait on its lock, then open it. A
cached index that fails its checks is rebuilt, once, with a warning.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

from chromaref.platform.assets import photos_dir
from chromaref.platform.errors import ChromarefError, ConfigError
from chromaref.platform.locks import exclusive
from chromaref.retrieval.build import BuildConfig, build_index
from chromaref.retrieval.descriptors import DescriptorExtractor
from chromaref.retrieval.index import Index

logger = logging.getLogger(__name__)
CACHE_ENV = "CHROMAREF_CACHE"
WAIT_S = 600.0  # for another process's first-use build (seconds, even on a slow machine)


def cache_dir() -> Path:
    """`$CHROMAREF_CACHE`, else `$XDG_CACHE_HOME/chromaref`, else `~/.cache/chromaref`."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "chromaref"


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
        return Index.open(path, extractor=extractor)
    except ChromarefError:
        pass  # not built yet, being built, or damaged: decide under the lock
    hint = "if that process hangs, stop it and retry"
    with exclusive(path, wait=WAIT_S, hint=hint):
        try:
            return Index.open(path, extractor=extractor)  # another process just built it
        except ChromarefError as exc:
            problem = exc
        if path.is_dir() and any(path.iterdir()):
            logger.warning("the cached default index cannot be used (%s); rebuilding it", problem)
            shutil.rmtree(path)
        else:
            logger.warning("indexing the bundled reference photos into %s (first use)", path)
        try:
            build_index(photos_dir(), path, config=BuildConfig(runner="local"))
            return Index.open(path, extractor=extractor)
        except (ChromarefError, OSError) as exc:
            raise ConfigError(
                f"could not build the default index in {path}: {exc}; delete that folder and "
                f"retry, set {CACHE_ENV} to another folder, or pass --index"
            ) from None
