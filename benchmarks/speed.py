"""Colorization latency and peak memory by image size, against a global-transfer baseline.

    python -m benchmarks.speed                 # CPU, sizes 256..2048, writes results/speed.json
    python -m benchmarks.speed --device cuda   # on a GPU machine
    python -m benchmarks.speed --quick         # 512 px only, fewer repeats, no large images
    python -m benchmarks.speed --large 24 --no-small   # only the 24 MP end-to-end run
    python -m benchmarks.speed --cold-only     # only the cold/warm CLI rows (kept apart)

Each (size, method) runs in a fresh process so its peak RSS is its own. Timings are end to
end after model load: read the target file, Lab + features, correspondence, colorize,
convert, encode the PNG. The baseline is Reinhard's global transfer through the same code.

Large images (12, 24, 96 MP by default) run the real command, `chromaref colorize BIG.jpg -r
REF.jpg --out OUT/` (load, colorize, save the result and the grid), once each in a fresh
process, timed from start to exit (so including model load) with the peak RSS of that process
alone, against the memory budget of 1 GB + 30 bytes per input pixel.

Cold vs warm, through the CLI a user runs, on a 512 px photo, for chromaref and Reinhard:
cold is the whole `chromaref colorize T.png -r R.jpg` process (interpreter, imports, model
load, one image, result and grid written), median of N fresh processes with the methods
interleaved; warm is the same command invoked again inside one process (imports and kernel
set-up already paid; model load, reading and writing files still included). Each runs alone
and beside a CPU burner (`while True: pass`, unpinned), and once more beside it with OpenMP
threads spinning (OMP_WAIT_POLICY=ACTIVE, OpenMP's default, which the CLI now overrides).
These rows are stored under "cold" with their own machine record, so a `--cold-only` run
leaves the other rows and their provenance as they were.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from benchmarks._common import (
    RESULTS_DIR,
    add_model_option,
    machine,
    run_child,
    table,
    write_json,
)
from benchmarks.report_speed import (
    LARGE_HEADERS,
    cold_table,
    large_rows,
    speed_table,
)
from chromaref.platform.files import atomic_write_text

SIZES = (256, 512, 1024, 2048)
METHODS = ("training-free", "reinhard")
# The CLI rows: the default colorizer (its shipped model), training-free and the baseline.
CLI_METHODS = ("trained", "training-free", "reinhard")
TARGET, REFERENCE = "aloe_l", "aloe_r"
LARGE_MEGAPIXELS = (12, 24, 96)
# Peak RSS allowed for `chromaref colorize` on an image: a fixed part (interpreter, torch,
# models) plus a part proportional to the input's pixels.
BUDGET_FIXED_MB = 1024.0
BUDGET_BYTES_PER_PIXEL = 30


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(
    size: int, method: str, repeats: int, device: str, threads: int, model: str | None = None
) -> dict:
    """Runs in its own process: one (size, method) measurement."""
    import torch

    from chromaref.platform.assets import photo
    from chromaref.platform.config import PipelineConfig, TrainedConfig
    from chromaref.platform.images import load_image, save_image
    from chromaref.platform.pipeline import ColorizationPipeline
    from chromaref.platform.timing import StageTimer

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        target_image = _resized_gray(size)
        target_path = Path(tmp) / "target.png"
        target_image.save(target_path)
        config = PipelineConfig(colorizer=method, trained=TrainedConfig(model=model))
        pipe = ColorizationPipeline(config, device=device)
        reference = pipe.prepare(load_image(photo(REFERENCE).path), name=REFERENCE)
        rss_after_load = _rss_mb()
        runs = []
        for _ in range(repeats + 1):  # the first run warms up and is dropped
            timer = StageTimer()
            start = time.perf_counter()
            with timer("io"):
                loaded = load_image(target_path)
            prepared = pipe.prepare(loaded, timer=timer)
            out = pipe.colorize(prepared, reference, timer=timer)
            with timer("io"):
                save_image(out.rgb, Path(tmp) / "out.png")
            if device == "cuda":
                torch.cuda.synchronize()
            runs.append({"total": time.perf_counter() - start, **timer.seconds})
    runs = runs[1:]
    stages = sorted({k for r in runs for k in r})
    return {
        "size": size,
        "method": method,
        "pixels": target_image.width * target_image.height,
        "median_s": {k: statistics.median(r.get(k, 0.0) for r in runs) for k in stages},
        "peak_rss_mb": _rss_mb(),
        "rss_after_model_load_mb": rss_after_load,
    }


def rss_budget_mb(pixels: int) -> float:
    """The peak RSS allowed for colorizing an image of `pixels` pixels, in MB."""
    return BUDGET_FIXED_MB + BUDGET_BYTES_PER_PIXEL * pixels / 2**20


def large_photo(folder: Path, megapixels: float, name: str = TARGET) -> Path:
    """A bundled real photo upscaled to about `megapixels` MP, saved as JPEG in `folder`."""
    from chromaref.platform.assets import photo

    with Image.open(photo(name).path) as small:
        scale = (megapixels * 1e6 / (small.width * small.height)) ** 0.5
        size = (round(small.width * scale), round(small.height * scale))
        path = folder / f"{name}_{megapixels:g}mp.jpg"
        small.convert("RGB").resize(size, Image.Resampling.BICUBIC).save(path, quality=90)
    return path


# What the `chromaref` console script runs, plus one line at exit with the process's own peak
# RSS. VmHWM belongs to the process's memory map, which exec replaces; ru_maxrss (os.wait4)
# would instead carry over the peak of the parent that forked it (a large pytest process).
_CLI_WITH_PEAK = """
import atexit, sys
def _peak():
    with open("/proc/self/status") as status:
        kb = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    sys.stderr.write("\\nPEAK_MARKER " + kb + "\\n")
atexit.register(_peak)
from chromaref.cli.main import app
sys.argv[0] = "chromaref"
sys.exit(app())
"""
PEAK_MARKER = "chromaref-peak-rss-kb"


def measure_command(command: list[str]) -> tuple[float, float]:
    """Run `command` (from `colorize_command`) to completion; returns its wall seconds and its
    own peak RSS in MB, as the process itself reported it at exit."""
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}): {done.stderr}")
    kb = next(line.split()[1] for line in done.stderr.splitlines() if line.startswith(PEAK_MARKER))
    return seconds, int(kb) / 1024.0


def colorize_command(target: Path, out: Path) -> list[str]:
    """The user's command line, `chromaref colorize TARGET -r REFERENCE --out OUT -q`, run as
    the console script runs it, with its peak RSS reported at exit."""
    from chromaref.platform.assets import photo

    return [sys.executable, "-c", _CLI_WITH_PEAK.replace("PEAK_MARKER", PEAK_MARKER),
            "colorize", str(target), "-r", str(photo(REFERENCE).path),
            "--out", str(out), "-q"]  # fmt: skip


def large(megapixels: float) -> dict:
    """One end-to-end `chromaref colorize` of a ~`megapixels` MP JPEG, in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        target = large_photo(Path(tmp), megapixels)
        with Image.open(target) as image:
            width, height = image.size
        seconds, peak_mb = measure_command(colorize_command(target, Path(tmp) / "out"))
    pixels = width * height
    return {
        "megapixels": megapixels,
        "width": width,
        "height": height,
        "pixels": pixels,
        "total_s": seconds,
        "peak_rss_mb": peak_mb,
        "budget_mb": rss_budget_mb(pixels),
    }


COLD_SIZE = 512
# (name, CPU burner beside it, OMP_WAIT_POLICY given to the process; None: the CLI's own)
CONDITIONS = (
    ("alone", False, None),
    ("beside a busy process", True, None),
    ("beside a busy process, OpenMP spinning", True, "ACTIVE"),
)


def _cold_target(folder: Path) -> Path:
    """`TARGET` as a gray PNG with a long side of `COLD_SIZE`."""
    path = folder / "target.png"
    _resized_gray(COLD_SIZE).save(path)
    return path


def _resized_gray(size: int) -> Image.Image:
    from chromaref.platform.assets import photo

    image = Image.open(photo(TARGET).path).convert("L")
    scale = size / max(image.size)
    return image.resize(
        (round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC
    )


def _env(wait_policy: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    return env if wait_policy is None else {**env, "OMP_WAIT_POLICY": wait_policy}


def _cold_process(command: list[str], env: dict[str, str]) -> dict:
    """One whole process: wall and CPU seconds (user + system), and the 1-min load before."""
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "load_avg": load}


def warm_child(method: str, repeats: int) -> dict:
    """Runs in its own process: the CLI invoked 1 + `repeats` times; the first is dropped."""
    from chromaref.cli.main import app

    with tempfile.TemporaryDirectory() as tmp:
        command = colorize_command(_cold_target(Path(tmp)), Path(tmp) / "out")
        runs = []
        for _ in range(repeats + 1):
            load = os.getloadavg()[0]
            start = time.perf_counter()
            app([*command[3:], "--method", method], standalone_mode=False)
            runs.append({"wall_s": time.perf_counter() - start, "load_avg": load})
    return {"runs": runs[1:]}


def _summary(condition: str, method: str, kind: str, runs: list[dict]) -> dict:
    return {
        "condition": condition,
        "method": method,
        "kind": kind,
        "median_s": statistics.median(r["wall_s"] for r in runs),
        "runs": runs,
    }


def cold_and_warm(repeats: int) -> list[dict]:
    """Cold and warm CLI rows for every condition (see the module docstring)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        command = colorize_command(_cold_target(Path(tmp)), Path(tmp) / "out")
        for condition, busy, policy in CONDITIONS:
            burner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
            try:
                cold: dict[str, list[dict]] = {m: [] for m in CLI_METHODS}
                for _ in range(repeats):
                    for method in CLI_METHODS:  # interleaved, so drifting load hits all alike
                        run = _cold_process([*command, "--method", method], _env(policy))
                        cold[method].append(run)
                rows += [_summary(condition, m, "cold", runs) for m, runs in cold.items()]
                for method in CLI_METHODS:
                    args = ["--warm-child", method, "--repeats", str(repeats)]
                    warm = _run_warm_child(args, _env(policy or "PASSIVE"))
                    rows.append(_summary(condition, method, "warm", warm["runs"]))
            finally:
                if burner is not None:
                    burner.kill()
                    burner.wait()
    return rows


def _run_warm_child(args: list[str], env: dict[str, str]) -> dict:
    """`python -m benchmarks.speed ARGS` with `env`: it imports torch before the CLI could set
    OMP_WAIT_POLICY, so the policy the CLI would use is given here."""
    cmd = [sys.executable, "-m", "benchmarks.speed", *args]
    done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _write_cold(rows: list[dict]) -> Path:
    """Store the cold/warm rows under "cold" in speed.json with their own machine record,
    keeping the other rows and their provenance."""
    path = RESULTS_DIR / "speed.json"
    record = json.loads(path.read_text()) if path.is_file() else {"device": "cpu", "results": []}
    command = " ".join(["python -m benchmarks.speed", *sys.argv[1:]])
    record["cold"] = {"machine": machine(), "command": command, "size": COLD_SIZE, "rows": rows}
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path


def _run_child(
    size: int, method: str, repeats: int, device: str, threads: int, model: str | None
) -> dict:
    args = ["--child", str(size), method, "--repeats", str(repeats)]
    args += ["--model", model] if method == "trained" else []
    return run_child("speed", [*args, "--device", device, "--threads", str(threads)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("SIZE", "METHOD"), help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="512 px only, 2 repeats")
    parser.add_argument(
        "--large", type=float, nargs="*", help=f"megapixels (default {LARGE_MEGAPIXELS}; none)"
    )
    parser.add_argument("--no-small", action="store_true", help="skip the 256..2048 px runs")
    parser.add_argument("--warm-child", metavar="METHOD", help=argparse.SUPPRESS)
    parser.add_argument("--cold-only", action="store_true", help="only the cold/warm CLI rows")
    add_model_option(parser)
    args = parser.parse_args()
    if args.child:
        size, method = int(args.child[0]), args.child[1]
        result = child(size, method, args.repeats, args.device, args.threads, args.model)
        print(json.dumps(result))
        return
    if args.warm_child:
        print(json.dumps(warm_child(args.warm_child, args.repeats)))
        return
    if args.cold_only:
        rows = cold_and_warm(args.repeats)
        print(cold_table(rows))
        print(f"\nwrote {_write_cold(rows)}")
        return
    sizes = () if args.no_small else (512,) if args.quick else SIZES
    repeats = 2 if args.quick else args.repeats
    methods = (*METHODS, "trained") if args.model else METHODS
    results = [
        _run_child(size, method, repeats, args.device, args.threads, args.model)
        for size in sizes
        for method in methods
    ]
    if results:
        print(speed_table(results))
    megapixels = args.large if args.large is not None else () if args.quick else LARGE_MEGAPIXELS
    large_results = [large(mp) for mp in megapixels]
    if large_results:
        print("\nchromaref colorize on large images (peak RSS vs 1 GB + 30 B/px):")
        print(table(LARGE_HEADERS, large_rows(large_results)))
    path = write_json(
        "speed" + ("_" + args.device if args.device != "cpu" else ""),
        {"device": args.device, "results": results, "large": large_results},
    )
    if args.device == "cpu" and not args.quick:
        rows = cold_and_warm(repeats)
        print("\n" + cold_table(rows))
        _write_cold(rows)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
