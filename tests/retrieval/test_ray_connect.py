"""Ray start-up never hangs: dead addresses fail in seconds with one line, a recorded local
cluster is joined only when asked for (`auto`), and a live `ray start --head` cluster neither
breaks a private instance with num_cpus nor the benchmark's Ray build.

Every Ray here lives under its own RAY_TMPDIR (so no other process on the machine sees its
address file), and only processes whose command line names that folder are killed: never
`ray stop`, which stops every Ray of the user on the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "chromaref")
CONNECT = """
import json, sys, time
import ray
from chromaref.retrieval.runtime import ensure_ray
start = time.monotonic()
try:
    ensure_ray(num_cpus=int(sys.argv[1]))
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}",
                      "seconds": time.monotonic() - start}))
else:
    print(json.dumps({"address": ray.get_runtime_context().gcs_address,
                      "cpus": ray.cluster_resources().get("CPU"),
                      "seconds": time.monotonic() - start}))
    ray.shutdown()
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RayHome:
    """A private RAY_TMPDIR: the environment that points Ray there, and cleanup by pid."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="cr-", dir="/tmp"))  # short: socket paths
        self.env = {**os.environ, "RAY_TMPDIR": str(self.dir), "RAY_AUTH_MODE": "disabled"}
        self.env.pop("RAY_ADDRESS", None)
        (self.dir / "ray").mkdir()

    @property
    def address_file(self) -> Path:
        return self.dir / "ray" / "ray_current_cluster"

    def processes(self) -> list[int]:
        """Pids of the Ray processes started under this folder (it is in their command line)."""
        pids = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and str(self.dir) in (entry / "cmdline").read_text():
                    pids.append(int(entry.name))
            except OSError:
                continue
        return [p for p in pids if p != os.getpid()]

    def kill(self) -> None:
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def connect(self, num_cpus: int, **env: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-c", CONNECT, str(num_cpus)],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    def cli(self, *args: str, **env: str) -> tuple[int, str, float]:
        start = time.monotonic()
        done = subprocess.run(
            [CLI, *args], env={**self.env, **env}, capture_output=True, text=True, timeout=300
        )
        return done.returncode, done.stdout + done.stderr, time.monotonic() - start


@pytest.fixture
def home():
    home = RayHome()
    yield home
    home.kill()
    shutil.rmtree(home.dir, ignore_errors=True)


def _assert_one_line_naming_the_fixes(text: str, address: str) -> None:
    assert "Traceback" not in text
    (line,) = [line for line in text.splitlines() if line.strip()]
    assert line.startswith("error:") and address in line
    assert "--address" in line and "--local" in line and "ray stop" in line


@pytest.mark.parametrize("how", ["RAY_ADDRESS", "--address ray://"])
def test_a_dead_address_fails_in_seconds_with_one_line(home, corpus, tmp_path, how):
    port = _closed_port()
    if how == "RAY_ADDRESS":
        address, args, env = f"127.0.0.1:{port}", [], {"RAY_ADDRESS": f"127.0.0.1:{port}"}
    else:
        address, env = f"ray://127.0.0.1:{port}", {}
        args = ["--address", address]
    code, text, seconds = home.cli(
        "index", "build", str(corpus), "--out", str(tmp_path / "i"), *args, **env
    )
    assert code == 2, text
    _assert_one_line_naming_the_fixes(text, address)
    assert "does not answer" in text
    assert seconds < 60  # imports on a busy 2-core machine; before: killed after 330 s
    assert not (tmp_path / "i").exists() and not home.processes()
    connect = home.connect(1, RAY_ADDRESS=address)  # the Ray step alone
    assert "does not answer" in connect["error"] and connect["seconds"] < 5


def test_a_dead_recorded_cluster_is_never_joined_by_accident(home, corpus, tmp_path):
    recorded = f"127.0.0.1:{_closed_port()}"
    home.address_file.write_text(recorded)  # a local cluster that died without `ray stop`
    private = home.connect(1)
    assert "error" not in private, private
    assert private["address"] != recorded and private["cpus"] == 1
    assert private["seconds"] < 120  # a private instance starts; no retrying the dead one
    code, text, seconds = home.cli(
        "index", "build", str(corpus), "--out", str(tmp_path / "i"), "--address", "auto"
    )
    assert code == 2 and seconds < 60, text
    _assert_one_line_naming_the_fixes(text, recorded)


@pytest.fixture(scope="module")
def live_cluster():
    """`ray start --head` (1 CPU) on 127.0.0.1 under its own RAY_TMPDIR; killed at the end."""
    home = RayHome()
    port = _closed_port()
    command = [
        str(Path(sys.executable).parent / "ray"), "start", "--head", f"--port={port}",
        "--node-ip-address=127.0.0.1", "--num-cpus=1", "--include-dashboard=false",
        "--disable-usage-stats",
    ]  # fmt: skip
    try:
        done = subprocess.run(command, env=home.env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        yield home, home.address_file.read_text().strip()
    finally:
        home.kill()
        shutil.rmtree(home.dir, ignore_errors=True)


def test_a_live_local_cluster_is_joined_only_when_asked(live_cluster):
    home, address = live_cluster
    private = home.connect(2)  # what benchmarks.retrieval does: num_cpus, no address
    assert "error" not in private, private
    assert private["address"] != address and private["cpus"] == 2
    joined = home.connect(2, RAY_ADDRESS="auto")  # num_cpus is dropped, not a ValueError
    assert "error" not in joined, joined
    assert joined["address"] == address and joined["cpus"] == 1


def test_the_benchmarks_ray_build_runs_beside_a_live_cluster(live_cluster, corpus, tmp_path):
    home, _ = live_cluster
    code = (
        "import sys; from pathlib import Path; from benchmarks.retrieval import build_rate;"
        "print(build_rate(Path(sys.argv[1]), Path(sys.argv[2]), 'ray', 8)[0])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(corpus), str(tmp_path / "idx")],
        cwd=ROOT,
        env=home.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.strip().splitlines()[-1]) > 0
    assert (tmp_path / "idx" / "manifest.json").is_file()


def test_a_cluster_build_prints_no_ray_internals(live_cluster, corpus, tmp_path):
    # Ray Data's actors log a core_worker.cc ERROR line about constructor arguments in the
    # object store (ray-project/ray#53727) on every such build; a user reads it as a failure.
    home, address = live_cluster
    code, text, _ = home.cli(
        "index", "build", str(corpus), "--out", str(tmp_path / "i"), "--address", address
    )
    assert code == 0, text
    assert (tmp_path / "i" / "manifest.json").is_file()
    assert "core_worker" not in text and "object store and max_restarts" not in text, text


def test_a_killed_live_cluster_fails_fast_instead_of_hanging(live_cluster, corpus, tmp_path):
    home, address = live_cluster
    home.kill()  # kill -9: its address file stays behind
    assert home.address_file.read_text().strip() == address
    code, text, seconds = home.cli(
        "index", "build", str(corpus), "--out", str(tmp_path / "i"), "--address", "auto"
    )
    assert code == 2 and seconds < 60, text
    _assert_one_line_naming_the_fixes(text, address)
