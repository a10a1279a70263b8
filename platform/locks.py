"""One writer at a time for a path: an OS file lock (`flock`) on the file `<path>.lock`.

    with exclusive(index_dir, wait=0):     # another holder -> LockHeldError at once
        ...build into index_dir...
    with exclusive(cache_index, wait=600): # another holder -> wait for it, at most 600 s
        ...

The kernel drops an flock when its holder exits, however it exits (kill -9 included), so a
lock file left behind never blocks anyone: the pid, host, start time and command written into
it only say who holds it. The lock file is the one file not written through
`chromaref.platform.files`: the lock lives on its inode, so it must never be replaced by a
rename. Its holder deletes it when done (before letting go), and a process that locked a file
deleted under it starts over on the new one, so two holders can never both hold `<path>.lock`.
Reentrant within one thread: a build called under its caller's lock does not wait on itself.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from chromaref.platform.errors import ChromarefError

logger = logging.getLogger(__name__)
POLL_S = 0.2
_CREDENTIALS = re.compile(r"(\w+://)[^/@\s]+@")
_held: dict[Path, int] = {}  # lock file -> thread holding it, in this process
_held_guard = threading.Lock()


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its holder wrote it (informative only)."""

    pid: int | None = None
    host: str = ""
    since: str = ""
    command: str = ""

    @classmethod
    def current(cls) -> Holder:
        since = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        command = _CREDENTIALS.sub(r"\1***@", " ".join(sys.argv))[:300]  # s3://key:secret@
        return cls(os.getpid(), socket.gethostname(), since, command)

    def __str__(self) -> str:
        if self.pid is None:
            return "another process"
        text = f"pid {self.pid} on {self.host}" + (f" since {self.since}" if self.since else "")
        return text + (f", running `{self.command}`" if self.command else "")


class LockHeldError(ChromarefError):
    """Another process holds the lock (and did not let go within the time allowed)."""

    def __init__(self, target: Path, lock_file: Path, holder: Holder, hint: str) -> None:
        self.target, self.lock_file, self.holder = target, lock_file, holder
        super().__init__(f"{target} is in use by {holder} (lock {lock_file}); {hint}")


def lock_file(target: str | os.PathLike[str]) -> Path:
    """The lock file that guards `target`: `<target>.lock`, beside it."""
    path = Path(os.path.abspath(target))
    folder = Path(os.path.realpath(path.parent))  # one lock however the folder is reached
    return folder / (path.name + ".lock")


def _read_holder(fd: int) -> Holder:
    try:
        return Holder(**json.loads(os.pread(fd, 4096, 0)))
    except (OSError, ValueError, TypeError):  # being written, or not ours: say "another"
        return Holder()


def _try_lock(path: Path) -> tuple[int | None, Holder]:
    """(fd holding the lock, us) or (None, the holder), without waiting."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # 0o666 minus the umask, like every file we write; close-on-exec by default
        fd, writable = os.open(path, os.O_RDWR | os.O_CREAT, 0o666), True
    except PermissionError:  # another user's lock file: flock needs only a read-only fd
        fd, writable = os.open(path, os.O_RDONLY), False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(fd)
        os.close(fd)
        return None, holder
    try:
        current = os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        current = False
    if not current:  # its previous holder deleted it while we opened it: use the new one
        os.close(fd)
        return _try_lock(path)
    me = Holder.current()
    if writable:  # who holds it, for the message others get (informative only)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me.__dict__).encode(), 0)
    return fd, me


def _acquire(target: Path, path: Path, wait: float, hint: str) -> int:
    deadline = time.monotonic() + wait
    announced = False
    while True:
        fd, holder = _try_lock(path)
        if fd is not None:
            return fd
        left = deadline - time.monotonic()
        if left <= 0:
            waited = f"waited {wait:.0f} s; " if wait > 0 else ""
            raise LockHeldError(target, path, holder, waited + hint)
        if not announced:
            logger.warning("%s is in use by %s: waiting up to %.0f s", target, holder, wait)
            announced = True
        time.sleep(min(POLL_S, left))


@contextmanager
def exclusive(
    target: str | os.PathLike[str],
    *,
    wait: float = 0.0,
    hint: str = "wait for it to finish, then retry",
) -> Iterator[None]:
    """Hold the lock on `target` for the block; wait at most `wait` seconds for another holder.

    Raises:
        LockHeldError: another process still holds it after `wait` seconds; the message
            names that process (pid, host, since when, command) and ends with `hint`.
    """
    target = Path(target)
    path = lock_file(target)
    me = threading.get_ident()
    with _held_guard:
        reentered = _held.get(path) == me
    if reentered:
        yield
        return
    fd = _acquire(target, path, wait, hint)
    with _held_guard:
        _held[path] = me
    try:
        yield
    finally:
        with _held_guard:
            del _held[path]
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:  # still ours (not deleted by hand)
                path.unlink()  # nobody can lock it between this and close
        except OSError:  # gone already, or in a folder we may not write: harmless either way
            pass
        os.close(fd)
