"""A real multi-process Ray cluster on 127.0.0.1, started with the `ray` CLI as a user would:
`ray start --head` (1 CPU) and one `ray start --address` worker node (1 CPU), each a separate
set of processes (GCS, raylets, workers).

Everything lives under a private RAY_TMPDIR, so no other Ray on the machine sees its address
file, and it is stopped by killing exactly the processes whose command line names that folder:
never `ray stop`, which stops every Ray cluster of the user on the machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


class CliCluster:
    """A head and `worker_nodes` worker nodes started by `ray start`, under its own
    RAY_TMPDIR."""

    GLOBAL_ADDRESS_FILE = Path("/tmp/ray/ray_current_cluster")  # what a bare `ray start` writes

    @staticmethod
    def free_port() -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]

    def __init__(self, *, head_cpus: int = 1, worker_nodes: int = 1) -> None:
        self.head_cpus, self.worker_nodes = head_cpus, worker_nodes
        self.home = Path(tempfile.mkdtemp(prefix="crc-", dir="/tmp"))  # short: socket paths
        (self.home / "ray").mkdir()
        self.env = {**os.environ, "RAY_TMPDIR": str(self.home), "RAY_AUTH_MODE": "disabled"}
        self.env.pop("RAY_ADDRESS", None)
        self.address = f"127.0.0.1:{self.free_port()}"

    @property
    def port(self) -> str:
        return self.address.rsplit(":", 1)[1]

    def recorded(self, address_file: Path) -> bool:
        """Whether `address_file` names this cluster (Ray writes the host's own IP there)."""
        try:
            return address_file.read_text().strip().endswith(f":{self.port}")
        except OSError:
            return False

    @property
    def address_file(self) -> Path:
        return self.home / "ray" / "ray_current_cluster"

    def _ray_start(self, *args: str, cpus: int = 1) -> None:
        common = [
            "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}", "--num-gpus=0",
            "--disable-usage-stats", "--min-worker-port=0", "--max-worker-port=0",
            f"--dashboard-agent-listen-port={self.free_port()}",
        ]  # fmt: skip
        command = [str(BIN / "ray"), "start", *args, *common]
        done = subprocess.run(
            command, cwd=self.home, env=self.env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def start(self) -> None:
        self._ray_start(
            "--head",
            f"--port={self.port}",
            "--include-dashboard=false",
            f"--ray-client-server-port={self.free_port()}",
            cpus=self.head_cpus,
        )
        for _ in range(self.worker_nodes):
            self._ray_start(f"--address={self.address}")

    def processes(self) -> list[int]:
        """Pids of the processes started for this cluster (its folder is in their command
        line: GCS, raylets, agents, workers); a zombie's command line is empty."""
        pids = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and str(self.home) in (entry / "cmdline").read_text():
                    pids.append(int(entry.name))
            except OSError:
                continue
        return [p for p in pids if p != os.getpid()]

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM every process of this cluster, SIGKILL what is left after `grace_s`, and
        remove its folder (with the address file `ray start` wrote there)."""
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            for pid in self.processes():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.2)
        shutil.rmtree(self.home, ignore_errors=True)

    def cli(self, *args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
        """`chromaref ARGS` run from `cwd`, in this cluster's environment."""
        return subprocess.run(
            [str(BIN / "chromaref"), *args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
