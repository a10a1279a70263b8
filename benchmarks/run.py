"""Run every benchmark, each in its own process, say which passed, regenerate the page.

    python -m benchmarks.run                 # full suite (~25 min on 2 CPU cores)
    python -m benchmarks.run --quick         # < 5 min: 512 px speed, fewer images everywhere
    python -m benchmarks.run --gpu           # also the speed benchmark on CUDA
    CHROMAREF_BENCH_OUT=/tmp/b python -m benchmarks.run --smoke   # CI: tiny, results elsewhere

Each benchmark prints its table and writes JSON (with command, machine, date and commit) under
benchmarks/results/; then `benchmarks.report` rewrites docs/benchmarks.md and its plots from
all the results there (with CHROMAREF_BENCH_OUT, everything goes under that folder instead).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

SUITES = {
    "full": {
        "speed": [],
        "quality": ["--grids"],
        "studies": [],
        "retrieval": [],
        "vector_index": [],
        "serving": [],
        "video": [],
        "training": [],
        "cluster_scaling": [],
    },
    "quick": {
        "speed": ["--quick"],
        "quality": ["--limit", "8"],
        "studies": ["--limit", "3"],
        "retrieval": ["--quick"],
        "vector_index": ["--quick"],
        "serving": ["--quick"],
        "video": ["--quick"],
        "training": ["--steps", "10", "--size", "64"],
        "cluster_scaling": ["--steps", "4"],
    },
    "smoke": {
        "speed": ["--quick"],
        "quality": ["--limit", "1"],
        "studies": ["--limit", "2", "--domains", "photos"],
        "retrieval": ["--only", "quality"],
        "vector_index": ["--sizes", "3000"],
    },
}


def _run(module: str, args: list[str]) -> bool:
    print(f"\n=== {module} {' '.join(args)}", flush=True)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *args], check=False)
    seconds = time.perf_counter() - start
    print(f"=== {module}: {'ok' if done.returncode == 0 else 'FAILED'} in {seconds:.0f} s")
    return done.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="under 5 minutes on 2 CPU cores")
    size.add_argument("--smoke", action="store_true", help="smallest settings (CI)")
    parser.add_argument("--gpu", action="store_true", help="also time the pipeline on CUDA")
    args = parser.parse_args()
    suite = SUITES["smoke" if args.smoke else "quick" if args.quick else "full"]
    runs = list(suite.items())
    if args.gpu:
        runs.append(("speed", [*suite["speed"], "--device", "cuda"]))
    failed = [name for name, extra in runs if not _run(name, extra)]
    if not _run("report", []):
        failed.append("report")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
