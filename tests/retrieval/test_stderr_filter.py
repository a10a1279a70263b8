"""fd 2 filtering: exactly the lines holding a needle vanish, native writes included."""

from __future__ import annotations

import os
import subprocess
import sys

from chromaref.retrieval.stderr_filter import RAY_NOISE, dropping_stderr_lines

RAY_LINE = (
    "[2026-12-01 21:45:31,258 E 14680 14680] core_worker.cc:2465: Actor with class name: "
    "'MapWorker(MapBatches(decode_batch)->MapBatches(DescriptorMapper))' and ID: 'ab' has "
    "constructor arguments in the object store and max_restarts > 0. If the arguments in the "
    "object store go out of scope or are lost, the actor restart will fail.\n"
)
SCRIPT = f"""
import os, sys
from chromaref.retrieval.stderr_filter import dropping_stderr_lines
with dropping_stderr_lines():
    os.write(2, b"before\\n" + {RAY_LINE.encode()!r} + b"after\\n")  # as native code writes
    os.write(2, b"\\rprogress 10%")  # a progress bar's partial line passes at once
    print("from python", file=sys.stderr, flush=True)
    os.write(2, b"[2026-12-01 E 1 1] core_worker.cc:99: a real error\\n")
os.write(2, {RAY_LINE.encode()!r})  # outside the block nothing is filtered
"""


def test_only_the_ray_noise_line_is_dropped():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True)
    assert done.returncode == 0
    assert done.stderr.decode() == (  # bytes: text mode would turn the \r into \n
        "before\nafter\n\rprogress 10%from python\n"
        "[2026-12-01 E 1 1] core_worker.cc:99: a real error\n" + RAY_LINE
    )


def test_stderr_is_restored_after_an_exception(capfd):
    before = os.fstat(2)
    try:
        with dropping_stderr_lines(RAY_NOISE):
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    after = os.fstat(2)
    assert (before.st_ino, before.st_dev) == (after.st_ino, after.st_dev)
    os.write(2, RAY_LINE.encode())
    assert capfd.readouterr().err == RAY_LINE
