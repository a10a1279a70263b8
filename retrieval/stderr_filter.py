"""Drop exactly the lines of Ray's C++ core worker that read as failures but are not.

Ray Data starts its map actors with `max_restarts=-1` (so a lost node's actors come back) and
passes its own transform to them by object reference. Ray's core worker then logs, once per
process and straight to file descriptor 2, an ERROR line that the actor "has constructor
arguments in the object store" (ray-project/ray#53727). chromaref's arguments are not the
cause and cannot avoid it, and turning restarts off would cost the fault tolerance that the
warning is about. Python's logging never sees the line, so the only place to drop it is the
descriptor itself: fd 2 goes through a pipe whose reader forwards every byte except such lines.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

RAY_NOISE = (b"has constructor arguments in the object store and max_restarts",)


def _forward(read_fd: int, write_fd: int, needles: tuple[bytes, ...]) -> None:
    """Copy `read_fd` to `write_fd` until EOF, leaving out lines holding a needle.

    A C++ log line arrives in one write of less than PIPE_BUF bytes, so it is whole within one
    read: a chunk without a needle is forwarded as it is, progress bars' partial lines included.
    """
    while chunk := os.read(read_fd, 65536):
        if any(needle in chunk for needle in needles):
            lines = chunk.splitlines(keepends=True)
            chunk = b"".join(line for line in lines if not any(n in line for n in needles))
        while chunk:
            chunk = chunk[os.write(write_fd, chunk) :]


@contextlib.contextmanager
def dropping_stderr_lines(needles: tuple[bytes, ...] = RAY_NOISE) -> Iterator[None]:
    """Within the block, lines written to fd 2 (by Python or native code) that hold one of
    `needles` are dropped; everything else reaches the original stderr unchanged.

    Start Ray before entering: processes spawned inside would inherit the pipe as stderr.
    """
    try:
        original = os.dup(2)
    except OSError:  # no fd 2 to filter
        yield
        return
    read_fd, write_fd = os.pipe()
    reader = threading.Thread(
        target=_forward, args=(read_fd, original, needles), name="stderr-filter", daemon=True
    )
    reader.start()
    sys.stderr.flush()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # the pipe's last write end closes: the reader sees EOF
        reader.join(timeout=5)
        os.close(read_fd)
        os.close(original)
