"""Shared benchmark plumbing: machine description, JSON results, plain-text tables."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform as stdlib_platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from chromaref.evaluation.run import METHODS
from chromaref.platform.config import TrainedConfig
from chromaref.platform.files import atomic_write_text

REPO_ROOT = Path(__file__).resolve().parents[1]
# CHROMAREF_BENCH_OUT redirects results and pictures (smoke runs must not touch the records).
_OUT = os.environ.get("CHROMAREF_BENCH_OUT")
REDIRECTED = bool(_OUT)
RESULTS_DIR = Path(_OUT) / "results" if _OUT else REPO_ROOT / "benchmarks" / "results"
DOCS_IMAGES = Path(_OUT) / "images" if _OUT else REPO_ROOT / "docs" / "images"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return stdlib_platform.processor() or stdlib_platform.machine()


# What the benchmarks themselves write: a run that has saved some results is still clean.
OUTPUTS = ("benchmarks/results", "docs/images")


def _commit() -> str:
    """The commit (`git describe --always`), suffixed `-dirty` when the working tree had other
    changes than the benchmarks' own outputs, so a number measured on edited code does not
    claim a commit (`git describe --dirty` would also count the results an earlier step of
    the same run had written)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    try:
        commit = git("describe", "--always")
        changed = git("status", "--porcelain", "--", ".", *(f":(exclude){o}" for o in OUTPUTS))
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if changed else "")


def machine() -> dict[str, Any]:
    """Where and when a number was produced, stored next to it."""
    commit = _commit()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "dirty": commit.endswith("-dirty"),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "gpu": gpu,
    }


def run_child(module: str, args: list[str]) -> dict[str, Any]:
    """Run `python -m benchmarks.<module> ARGS` in a fresh process (so its peak memory is its
    own) and return the JSON object it prints last; its stderr passes through."""
    cmd = [sys.executable, "-m", f"benchmarks.{module}", *args]
    done = subprocess.run(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child {' '.join(args)} failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, program name, CPU seconds so far) of every readable process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            name = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
        found[int(entry.name)] = (int(fields[1]), name, cpu)
    return found


def descends_from(pid: int, ancestor: int, parents: dict[int, int]) -> bool:
    """Whether `pid` is `ancestor` or one of its descendants, following `parents`."""
    while pid not in (0, ancestor):
        pid = parents.get(pid, 0)
    return pid == ancestor


def write_json(name: str, payload: dict[str, Any]) -> Path:
    """Write results atomically to benchmarks/results/<name>.json."""
    path = RESULTS_DIR / f"{name}.json"
    command = " ".join(["python -m benchmarks." + Path(sys.argv[0]).stem, *sys.argv[1:]])
    record = {"machine": machine(), "command": command, **payload}
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table (also readable in a terminal)."""

    def fmt(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def add_model_option(parser: argparse.ArgumentParser) -> None:
    """`--model`: a ColorNet file (`chromaref train` writes one) adds a `trained` column."""
    parser.add_argument("--model", help="ColorNet model file: adds the `trained` column")


def compared_methods(model: str | None) -> tuple[tuple[str, ...], TrainedConfig]:
    """The benchmark's methods: the evaluation's own, plus `trained` when a model is given."""
    if model is None:
        return METHODS, TrainedConfig()
    return (*METHODS, "trained"), TrainedConfig(model=model)
