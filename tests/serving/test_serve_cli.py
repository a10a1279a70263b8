"""`chromaref serve` as a user runs it: ready URL on stdout, serving over HTTP, a clean stop
on SIGTERM or Ctrl-C with no process it started left behind, and one-line errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from served import free_port

pytestmark = [pytest.mark.ray, pytest.mark.integration, pytest.mark.slow]
CHROMAREF = str(Path(sys.executable).parent / "chromaref")


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return {**env, "OMP_NUM_THREADS": "1"}


def _descendants(pid: int) -> set[int]:
    """Every live process under `pid` (from /proc: no psutil needed)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's bookkeeping remains


def _start(index: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [CHROMAREF, "serve", "--index", str(index), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
    )


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_its_url_serves_and_stops_cleanly(local_index, photo_rgb, stop_signal):
    port = free_port()
    server = _start(local_index, port)
    try:
        url = server.stdout.readline().strip()  # printed once the app is ready
        assert url == f"http://127.0.0.1:{port}/", url or server.stderr.read()
        assert requests.get(url + "readyz", timeout=30).json()["status"] == "ready"
        assert "<html" in requests.get(url, timeout=30).text.lower()
        started = _descendants(server.pid)
        assert started  # Ray's processes, started by the command
        server.send_signal(stop_signal)
        assert server.wait(timeout=90) == 0
    finally:
        if server.poll() is None:
            server.kill()
    deadline = time.monotonic() + 30
    while any(map(_alive, started)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [pid for pid in started if _alive(pid)], "processes left running"
    assert "stopped" in server.stderr.read()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "healthz", timeout=5)


def test_a_taken_port_and_a_missing_index_are_one_line_errors(local_index, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run(
            [CHROMAREF, "serve", "--index", str(local_index), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
            env=_environment(),
        )
    assert busy.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    assert "Traceback" not in busy.stderr
    missing = subprocess.run(
        [CHROMAREF, "serve", "--index", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        timeout=120,
        env=_environment(),
    )
    assert missing.returncode == 2 and "error:" in missing.stderr
    assert "Traceback" not in missing.stderr and str(tmp_path / "nowhere") in missing.stderr
