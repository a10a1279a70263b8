"""File helpers shared by every writer: atomic writes, permissions and content hashes.

Every file the project writes goes through `atomic_path`, so every file gets the same
permissions: the user's umask applied to 0o666 (0644 by default), or the mode of the file it
replaces. Folders are made with `Path.mkdir`, which applies the umask to 0o777 (0755).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Temp names repeat at most this many bytes of the final name, so that a final name near the
# file system's limit (usually 255 bytes) fails on its own, with its own name, at the rename.
_TEMP_NAME_BYTES = 64


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block succeeds, give it `target_mode(path)`,
    fsync it and rename it over `path`; when it fails, delete it. An existing file at `path`
    survives any failure. File system errors are raised as `OSError`."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    stem = os.fsencode(final.name)[:_TEMP_NAME_BYTES].decode(errors="ignore")
    fd, name = tempfile.mkstemp(dir=final.parent, prefix=f".{stem}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, target_mode(final))  # mkstemp makes 0600 files, and writers may replace it
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `path` through `atomic_path`: all of it or nothing."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def target_mode(final: str | os.PathLike[str]) -> int:
    """Permission bits for a file written at `final`: those of the file it replaces, else
    0o666 minus the umask, as `open()` would give a new file."""
    try:
        return os.stat(final).st_mode & 0o7777
    except OSError:
        return 0o666 & ~umask()


def umask() -> int:
    """The process umask, read without changing it where /proc allows (Linux).

    Elsewhere it is read by setting and restoring it, which is not atomic across threads."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
