"""The index build at corpus scale: build time, images/s, peak memory and search latency.

    python -m benchmarks.scale                                  # folder and Parquet, 10k and 20k
    python -m benchmarks.scale --builds folder:1000 parquet:2000    # quick

A synthetic-but-real corpus: the bundled photos under random 4:3 crops, mirrored or not, saved
at random JPEG quality (`benchmarks.retrieval.imagenet_like_corpus`), so every file decodes as
a distinct ImageNet-like JPEG (500x375, ~85 KB). The same files are laid out as a folder tree
(100 class folders, ImageNet's layout) and as Parquet (files of 1,000 rows in row groups of
100, an `image` bytes column and a `label` column); the 10k corpus is the first half of the
20k one. Each build runs `build_index` end to end on its own private local Ray in a fresh
process, so its peaks are its own: the driver's peak RSS (VmHWM, beside the size of the FAISS
index it holds in memory while building it), and, sampled every 0.5 s
from /proc, the largest RSS of any one Ray worker and the PSS of all of them together (shared
pages split between the processes that map them; object store pages a worker touches count).
Then the built index answers gray queries from the corpus: the first (model load included)
and the median and p95 of the warm rest.
Results are written after each build, so an interrupted run keeps what finished.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks._common import descends_from, processes, run_child, table, write_json

CLASSES = 100
PARQUET_ROWS = 1000
PARQUET_GROUP_ROWS = 100
QUERIES = 30
SAMPLE_SECONDS = 0.5
DEFAULT_BUILDS = ("folder:10000", "folder:20000", "parquet:10000", "parquet:20000")


def _lay_out(files: list[Path], root: Path, layout: str, size: int) -> Path:
    """The first `size` files as a folder tree or as Parquet files, under `root`."""
    corpus = root / f"{layout}-{size}"
    if layout == "folder":
        for n, file in enumerate(files[:size]):
            target = corpus / f"class_{n % CLASSES:03d}" / file.name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(file, target)
        return corpus
    import pyarrow as pa
    import pyarrow.parquet as pq

    corpus.mkdir(parents=True)
    for part, start in enumerate(range(0, size, PARQUET_ROWS)):
        chunk = files[start : min(start + PARQUET_ROWS, size)]
        table_ = pa.table(
            {
                "image": [f.read_bytes() for f in chunk],
                "label": [f"class_{(start + n) % CLASSES:03d}" for n in range(len(chunk))],
            }
        )
        path = corpus / f"part-{part:04d}.parquet"
        pq.write_table(table_, path, row_group_size=PARQUET_GROUP_ROWS)
    return corpus


class _WorkerMemory:
    """Samples this process's Ray workers (descendants named `ray::...`): the largest RSS of
    any one, and the PSS of all of them together (shared pages counted once, split between
    the processes that map them, so the sum is memory really used)."""

    def __init__(self) -> None:
        self.largest_rss = 0  # bytes
        self.total_pss = 0  # bytes, at one sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            sizes = [_memory(pid) for pid in _our_workers()]
            if sizes:
                self.largest_rss = max(self.largest_rss, max(rss for rss, _ in sizes))
                self.total_pss = max(self.total_pss, sum(pss for _, pss in sizes))


def _our_workers() -> list[int]:
    """Pids of the Ray workers descended from this process."""
    found = processes()
    parents = {pid: parent for pid, (parent, _, _) in found.items()}
    return [
        pid
        for pid, (_, name, _) in found.items()
        if name.startswith("ray::") and descends_from(pid, os.getpid(), parents)
    ]


def _memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in bytes; zeros once it has gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    fields = {line.split(":")[0]: line.split()[1] for line in text.splitlines()[1:]}
    return int(fields.get("Rss", 0)) * 1024, int(fields.get("Pss", 0)) * 1024


def _peak_rss() -> int:
    with open("/proc/self/status") as status:
        return int(next(line.split()[1] for line in status if line.startswith("VmHWM:"))) * 1024


def _search_latency(index_dir: Path, corpus: Path) -> dict:
    from chromaref.platform.color import gray_image
    from chromaref.platform.images import load_image
    from chromaref.retrieval.corpus import list_corpus, read_bytes
    from chromaref.retrieval.index import Index

    items = list_corpus(corpus)
    step = max(1, len(items) // QUERIES)
    queries = [gray_image(load_image(read_bytes(i.uri)).rgb) for i in items[::step][:QUERIES]]
    start = time.perf_counter()
    index = Index.open(index_dir)
    index.search(queries[0], 5)
    first = time.perf_counter() - start
    warm = []
    for query in queries[1:]:
        start = time.perf_counter()
        index.search(query, 5)
        warm.append(time.perf_counter() - start)
    return {
        "first_s": first,
        "warm_median_s": float(np.median(warm)),
        "warm_p95_s": float(np.percentile(warm, 95)),
        "queries": len(queries),
        "faiss": index.vectors.factory,
    }


def child(layout: str, size: int, corpus: Path, out: Path) -> dict:
    """One build in this (fresh) process; the figures as a dict."""
    from chromaref.retrieval import store
    from chromaref.retrieval.build import BuildConfig, build_index
    from chromaref.retrieval.runtime import ensure_ray

    ensure_ray(num_cpus=os.cpu_count())
    with _WorkerMemory() as workers:
        start = time.perf_counter()
        report = build_index(corpus, out, config=BuildConfig(runner="ray"))
        seconds = time.perf_counter() - start
    return {
        "layout": layout,
        "size": size,
        "indexed": report.count,
        "skipped": len(report.skipped),
        "seconds": seconds,
        "images_per_s": report.described / seconds,
        "stage_seconds": report.stage_seconds,
        "index_mb": report.index_bytes / 1e6,
        "faiss_mb": store.read_manifest(out)["vector_index"]["bytes"] / 1e6,
        "driver_peak_rss_mb": _peak_rss() / 1e6,
        "worker_peak_rss_mb": workers.largest_rss / 1e6,
        "workers_peak_pss_mb": workers.total_pss / 1e6,
        "loadavg_1m": os.getloadavg()[0],
        "search": _search_latency(out, corpus),
    }


HEADERS = [
    "layout",
    "images",
    "build s",
    "images/s",
    "driver peak MB",
    "largest worker MB",
    "all workers PSS MB",
    "first search s",
    "warm search ms (p95)",
]


def _row(r: dict) -> list:
    search = r["search"]
    return [
        r["layout"],
        r["indexed"],
        r["seconds"],
        r["images_per_s"],
        r["driver_peak_rss_mb"],
        r["worker_peak_rss_mb"],
        r["workers_peak_pss_mb"],
        search["first_s"],
        f"{search['warm_median_s'] * 1e3:.1f} ({search['warm_p95_s'] * 1e3:.1f})",
    ]


def _command(builds: list[str]) -> str:
    options = "" if builds == list(DEFAULT_BUILDS) else " --builds " + " ".join(builds)
    return "python -m benchmarks.scale" + options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--builds", nargs="+", default=list(DEFAULT_BUILDS), help="LAYOUT:IMAGES, in turn"
    )
    parser.add_argument("--child", nargs=4, metavar=("LAYOUT", "SIZE", "CORPUS", "OUT"))
    args = parser.parse_args()
    if args.child:
        layout, size, corpus, out = args.child
        print(json.dumps(child(layout, int(size), Path(corpus), Path(out))))
        return

    from benchmarks.retrieval import imagenet_like_corpus

    builds = [(layout, int(size)) for layout, size in (b.split(":") for b in args.builds)]
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="chromaref-scale-") as tmp:
        root = Path(tmp)
        print(f"writing {max(s for _, s in builds):,} distinct JPEGs ...", flush=True)
        files = imagenet_like_corpus(root / "jpegs", max(s for _, s in builds))
        for layout, size in builds:
            corpus = _lay_out(files, root, layout, size)
            print(f"building {layout} {size:,} ...", flush=True)
            out = root / f"index-{layout}-{size}"
            child_args = ["--child", layout, str(size), str(corpus), str(out)]
            results.append(run_child("scale", child_args))
            print(table(HEADERS, [_row(r) for r in results]), flush=True)
            write_json("scale", {"builds": results, "command": _command(args.builds)})


if __name__ == "__main__":
    main()
