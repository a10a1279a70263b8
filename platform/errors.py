"""Typed errors: every failure a user can cause has a class and a message that names the fix."""

from __future__ import annotations


class ChromarefError(Exception):
    """Base class for errors a user can act on (bad input, missing weights, bad config)."""


class ConfigError(ChromarefError, ValueError):
    """A configuration value or argument is invalid."""


class WeightsError(ChromarefError):
    """Model weights are missing, unreadable or do not fit the architecture."""


class FileError(ChromarefError):
    """A file cannot be used; the message is `path: reason`, both kept for callers."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ImageLoadError(FileError):
    """An image file cannot be read safely (corrupt, truncated, too large, not an image)."""


class TooManyPixelsError(ImageLoadError):
    """An image has more pixels than the limit (a decompression bomb, or just too big)."""


class IndexFileError(FileError):
    """A saved vector index (or its JSON sidecar) is missing, unreadable or inconsistent."""


class UnusableReferenceError(ChromarefError):
    """A reference image cannot serve as a color source (e.g. it has no color)."""


class IndexMismatchError(ChromarefError):
    """An index was built with another descriptor model or format than the running one."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type when empty), for one-line errors
    built from third-party exceptions whose text may run over many lines."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]
