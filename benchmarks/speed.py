"""Colorization latency and peak memory by image size, against a global-transfer baseline.

    python -m benchmarks.speed                 # CPU, sizes 256..2048, writes results/speed.json
    python -m benchmarks.speed --device cuda   # on a GPU machine
    python -m benchmarks.speed --quick         # 512 px only, fewer repeats

Each (size, method) runs in a fresh process so its peak RSS is its own. Timings are end to
end after model load: read the target file, Lab + features, correspondence, colorize,
convert, encode the PNG. The baseline is Reinhard's global transfer through the same code.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image

from benchmarks._common import run_child, table, write_json
from benchmarks.report import SPEED_HEADERS, speed_rows

SIZES = (256, 512, 1024, 2048)
METHODS = ("training-free", "reinhard")
TARGET, REFERENCE = "aloe_l", "aloe_r"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(size: int, method: str, repeats: int, device: str, threads: int) -> dict:
    """Runs in its own process: one (size, method) measurement."""
    import torch

    from chromaref.platform.assets import photo
    from chromaref.platform.config import PipelineConfig
    from chromaref.platform.images import load_image, save_image
    from chromaref.platform.pipeline import ColorizationPipeline
    from chromaref.platform.timing import StageTimer

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        target_image = Image.open(photo(TARGET).path).convert("L")
        scale = size / max(target_image.size)
        target_image = target_image.resize(
            (round(target_image.width * scale), round(target_image.height * scale)),
            Image.Resampling.BICUBIC,
        )
        target_path = Path(tmp) / "target.png"
        target_image.save(target_path)
        pipe = ColorizationPipeline(PipelineConfig(colorizer=method), device=device)
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


def _run_child(size: int, method: str, repeats: int, device: str, threads: int) -> dict:
    args = ["--child", str(size), method, "--repeats", str(repeats)]
    return run_child("speed", [*args, "--device", device, "--threads", str(threads)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("SIZE", "METHOD"), help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="512 px only, 2 repeats")
    args = parser.parse_args()
    if args.child:
        result = child(int(args.child[0]), args.child[1], args.repeats, args.device, args.threads)
        print(json.dumps(result))
        return
    sizes = (512,) if args.quick else SIZES
    repeats = 2 if args.quick else args.repeats
    results = [
        _run_child(size, method, repeats, args.device, args.threads)
        for size in sizes
        for method in METHODS
    ]
    print(table(SPEED_HEADERS, speed_rows(results)))
    path = write_json(
        "speed" + ("_" + args.device if args.device != "cpu" else ""),
        {"device": args.device, "results": results},
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
