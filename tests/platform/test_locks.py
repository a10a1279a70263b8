"""`platform.locks.exclusive` against real processes: fail fast naming the holder, bounded
waits, no blocking by a dead holder's lock file, and mutual exclusion under contention."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from chromaref.platform.locks import LockHeldError, exclusive, lock_file

HOLD = """
import sys
from chromaref.platform.locks import exclusive
with exclusive(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes our stdin (or kills us)
"""


def _holder(target: Path, *args: str) -> subprocess.Popen[str]:
    """A separate process that holds the lock on `target` until its stdin is closed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(target), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def _release(proc: subprocess.Popen[str]) -> None:
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0


def test_second_holder_fails_at_once_naming_the_first(tmp_path):
    target = tmp_path / "idx"
    holder = _holder(target, "s3://key:secret@bucket/corpus")
    try:
        start = time.monotonic()
        with pytest.raises(LockHeldError) as caught, exclusive(target, hint="try later"):
            pass
        assert time.monotonic() - start < 1.0
        message = str(caught.value)
        assert f"pid {holder.pid} on {socket.gethostname()}" in message
        assert str(lock_file(target)) in message and message.endswith("try later")
        assert "\n" not in message
        assert "s3://***@bucket/corpus" in message and "secret" not in message
    finally:
        _release(holder)
    assert not lock_file(target).exists()  # the holder removed it on its way out


def test_wait_is_bounded_and_says_who_it_waits_for(tmp_path, caplog):
    target = tmp_path / "idx"
    holder = _holder(target)
    try:
        start = time.monotonic()
        expected = pytest.raises(LockHeldError, match="waited 1 s")
        with caplog.at_level(logging.WARNING), expected, exclusive(target, wait=1.0):
            pass
        assert 1.0 <= time.monotonic() - start < 3.0
        waits = [r.getMessage() for r in caplog.records if "waiting up to" in r.getMessage()]
        assert len(waits) == 1 and f"pid {holder.pid}" in waits[0]
    finally:
        _release(holder)


def test_a_waiter_gets_the_lock_when_the_holder_finishes(tmp_path):
    target = tmp_path / "idx"
    holder = _holder(target)
    threading.Timer(1.0, holder.stdin.close).start()
    start = time.monotonic()
    with exclusive(target, wait=30):
        waited = time.monotonic() - start
        assert f'"pid": {os.getpid()}' in lock_file(target).read_text()
    assert 0.8 <= waited < 10
    assert holder.wait(timeout=30) == 0


def test_a_killed_holders_lock_file_does_not_block(tmp_path):
    target = tmp_path / "idx"
    holder = _holder(target)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert f'"pid": {holder.pid}' in lock_file(target).read_text()  # left behind
    with exclusive(target):  # the kernel released its flock
        assert f'"pid": {os.getpid()}' in lock_file(target).read_text()
    assert not lock_file(target).exists()


def test_reentrant_in_one_thread_exclusive_across_threads(tmp_path):
    target = tmp_path / "idx"
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            with exclusive(target):
                pass
        except LockHeldError as exc:
            errors.append(exc)

    with exclusive(target), exclusive(target):  # a build under its caller's lock
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert len(errors) == 1 and f"pid {os.getpid()}" in str(errors[0])


CONTEND = """
import os, sys, time
from chromaref.platform.locks import exclusive
target, log = sys.argv[1], sys.argv[2]
for _ in range(15):
    with exclusive(target, wait=60):
        with open(log, "a") as f:
            f.write(f"in {os.getpid()}\\n")
        time.sleep(0.005)
        with open(log, "a") as f:
            f.write(f"out {os.getpid()}\\n")
"""


def test_never_two_holders_while_lock_files_come_and_go(tmp_path):
    target, log = tmp_path / "idx", tmp_path / "log"
    procs = [
        subprocess.Popen([sys.executable, "-c", CONTEND, str(target), str(log)]) for _ in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    lines = log.read_text().splitlines()
    assert len(lines) == 4 * 15 * 2
    for enter, leave in zip(lines[::2], lines[1::2], strict=True):  # never interleaved
        assert enter.startswith("in ") and leave == "out " + enter[3:]
    assert not lock_file(target).exists()


def test_one_lock_however_the_folder_is_named_and_it_follows_the_umask(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert lock_file(tmp_path / "link" / "idx") == lock_file(real / "idx")
    proc = _holder(real / "idx")
    try:
        with pytest.raises(LockHeldError), exclusive(tmp_path / "link" / "idx"):
            pass
    finally:
        _release(proc)
    code = (
        "import os, stat, sys\n"
        "from chromaref.platform.locks import exclusive, lock_file\n"
        "os.umask(0o002)\n"
        "with exclusive(sys.argv[1]):\n"
        "    print(oct(stat.S_IMODE(os.stat(lock_file(sys.argv[1])).st_mode)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(real / "shared")], capture_output=True, text=True
    )
    assert done.stdout.strip() == "0o664", done.stderr
