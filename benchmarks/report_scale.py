"""The page's "index build at corpus scale" section; every number from results/scale.json."""

from __future__ import annotations

from benchmarks._common import table
from benchmarks.report import Results, _opening


def largest_builds(results: Results) -> list[dict]:
    """The builds of the largest corpus, one per layout: the rate start-up matters least to."""
    builds = results["builds"]
    if not builds:
        raise ValueError("results/scale.json holds no build")
    largest = max(b["size"] for b in builds)
    return [b for b in builds if b["size"] == largest]


HEADERS = [
    "layout",
    "images",
    "build s",
    "images/s",
    "driver peak RSS MB",
    "largest worker RSS MB",
    "all workers PSS MB",
    "FAISS",
    "first search s",
    "warm search ms, median (p95)",
]
METHOD = (
    "Distinct ImageNet-like JPEGs (the bundled photos under random 4:3 crops, mirrored or not, "
    "500x375 at random quality), as a folder tree of 100 class folders and as Parquet files of "
    "1,000 rows in row groups of 100; the smaller corpus is the first half of the larger. Each "
    "build is the Ray Data `build_index` end to end on its own private local Ray (one logical "
    "CPU per core) in a fresh process. Driver: its peak RSS (VmHWM). Workers: sampled every "
    "0.5 s from /proc, the largest RSS of any one Ray worker, and the PSS of all of them at one "
    "moment (shared pages split between the processes that map them, so the sum is memory "
    "really used). Search: gray versions of corpus images as queries, top 5, on the built "
    "index in the same process; the first includes opening the index and loading the model."
)


def _row(r: dict) -> list:
    search = r["search"]
    return [
        r["layout"],
        f"{r['indexed']:,}",
        f"{r['seconds']:.0f}",
        f"{r['images_per_s']:.1f}",
        f"{r['driver_peak_rss_mb']:.0f}",
        f"{r['worker_peak_rss_mb']:.0f}",
        f"{r['workers_peak_pss_mb']:.0f}",
        search["faiss"],
        f"{search['first_s']:.2f}",
        f"{search['warm_median_s'] * 1e3:.0f} ({search['warm_p95_s'] * 1e3:.0f})",
    ]


def _growth(builds: list[dict]) -> str:
    """Per layout, how the peaks moved from the smallest to the largest corpus."""
    lines = []
    for layout in dict.fromkeys(b["layout"] for b in builds):
        runs = sorted((b for b in builds if b["layout"] == layout), key=lambda b: b["indexed"])
        if len(runs) < 2:
            continue
        small, large = runs[0], runs[-1]
        ratios = ", ".join(
            f"{what} {large[key] / small[key]:.2f}x"
            for what, key in (
                ("driver", "driver_peak_rss_mb"),
                ("largest worker", "worker_peak_rss_mb"),
                ("all workers", "workers_peak_pss_mb"),
            )
        )
        added = large["indexed"] - small["indexed"]
        per_image_kb = (large["driver_peak_rss_mb"] - small["driver_peak_rss_mb"]) * 1e3 / added
        faiss_kb = (large["faiss_mb"] - small["faiss_mb"]) * 1e3 / added
        lines.append(
            f"- {layout}: {large['indexed'] / small['indexed']:.1f}x the images, peak memory "
            f"{ratios} (the driver {per_image_kb:.1f} KB more per added image, of which "
            f"{faiss_kb:.1f} KB is the FAISS index it builds in memory); "
            f"{large['images_per_s']:.1f} vs {small['images_per_s']:.1f} images/s."
        )
    return "\n".join(lines)


def scale_section(results: Results | None) -> str:
    text = _opening("## Index build at corpus scale", "python -m benchmarks.scale", results, METHOD)
    if results is None:
        return text
    builds = results["builds"]
    growth = _growth(builds)
    return (
        f"{text}\n\n{table(HEADERS, [_row(r) for r in builds])}\n\n"
        + (f"From the smaller corpus to the larger:\n\n{growth}\n\n" if growth else "")
        + "The load average at the end of each build: "
        + ", ".join(f"{b['loadavg_1m']:.1f}" for b in builds)
        + ". What these rates mean for 1.28M and 100M images, per core and per GPU: "
        "[deploy.md](deploy.md).\n"
    )
