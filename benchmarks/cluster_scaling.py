"""Scaling from one Ray node to two: an index build and a short training run, side by side.

    python -m benchmarks.cluster_scaling              # 35 bundled photos, 8 steps, 1 round
    python -m benchmarks.cluster_scaling --rounds 2   # layouts interleaved over 2 rounds

Layouts: 1 node of 1 CPU, and 2 nodes of 1 CPU each (a `ray.cluster_utils.Cluster`: separate
raylet processes on this machine, joined as `--address` would). The index build is the real
`build_index` over the bundled photos (one descriptor actor per CPU); training is the real
`train` (Ray Train DDP, gloo, one 1-CPU worker per node) of a small ColorNet, with samples/s as
logged by rank 0 (all workers' samples over the step's time), the first step left out.

Honest bound: this machine has 2 cores shared with other work, so 2 nodes can at best double
1 node, and the load average next to each figure says how much else ran. A real cluster adds
network transfers (object store, gradients) that processes on one machine do not pay.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import table, write_json
from chromaref.platform.assets import photos_dir

LAYOUTS = {"1 node x 1 CPU": 1, "2 nodes x 1 CPU": 2}
# A small ColorNet at 128 px: steps of about a second on one core, so a run is short.
TRAINING = {
    "model_options": {"width": 8, "depths": [1, 1, 1, 1], "middle_blocks": 0, "feature_reduce": 8},
    "matching": {"working_size": 128},
    "batch_size": 4,
    "log_every": 1,
    "data": {"max_val_images": 1},
    "tracking": {"register_model": False},
}


def start_cluster(nodes: int):
    """`nodes` Ray nodes of 1 CPU each, joined by this process as a driver."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0})
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=1, num_gpus=0)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="WARNING")
    return cluster


def index_rate(corpus: Path, out: Path, address: str) -> dict[str, Any]:
    from chromaref.retrieval.build import BuildConfig, build_index

    start = time.perf_counter()
    report = build_index(corpus, out, config=BuildConfig(shard_size=8), address=address)
    seconds = time.perf_counter() - start
    return {
        "images": report.described,
        "seconds": seconds,
        "images_per_s": report.described / seconds,
        "stage_seconds": report.stage_seconds,
    }


def training_rate(corpus: Path, tmp: Path, workers: int, steps: int, address: str) -> dict:
    from mlflow import MlflowClient

    from chromaref.training.config import resolve_config
    from chromaref.training.trainer import train

    uri = f"sqlite:///{tmp / 'mlruns.db'}"
    overrides = {
        "corpus": str(corpus),
        "workers": workers,
        "steps": steps,
        "checkpoint_every": steps,
        "storage": str(tmp / "runs"),
        "out": str(tmp / "model"),
        "tracking.tracking_uri": uri,
    }
    start = time.perf_counter()
    result = train(resolve_config(TRAINING, overrides), address=address)
    seconds = time.perf_counter() - start
    history = MlflowClient(uri).get_metric_history(result.mlflow_run_id, "train/samples_per_s")
    rates = [m.value for m in sorted(history, key=lambda m: m.step) if m.step > 1]
    return {
        "workers": workers,
        "steps": result.step,
        "samples_per_step": workers * TRAINING["batch_size"],
        "samples_per_s": statistics.median(rates),
        "seconds_end_to_end": seconds,
    }


def measure(layout: str, nodes: int, tmp: Path, steps: int) -> dict[str, Any]:
    import ray

    corpus = Path(photos_dir())
    cluster = start_cluster(nodes)
    try:
        load_before = os.getloadavg()[0]
        index = index_rate(corpus, tmp / "index", cluster.address)
        training = training_rate(corpus, tmp, nodes, steps, cluster.address)
        load_after = os.getloadavg()[0]
    finally:
        ray.shutdown()
        cluster.shutdown()
    return {
        "layout": layout,
        "nodes": nodes,
        "cpus": nodes,
        "index": index,
        "training": training,
        "loadavg_1m": [load_before, load_after],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds per layout")
    parser.add_argument("--steps", type=int, default=8, help="training steps per run")
    args = parser.parse_args()
    ray_home = Path(tempfile.mkdtemp(prefix="crs-", dir="/tmp"))  # short: socket paths
    os.environ["RAY_TMPDIR"] = str(ray_home)  # no other Ray on the machine sees these nodes
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.pop("RAY_ADDRESS", None)
    runs = []
    try:
        for round_ in range(args.rounds):
            for layout, nodes in LAYOUTS.items():
                with tempfile.TemporaryDirectory() as tmp:
                    run = measure(layout, nodes, Path(tmp), args.steps)
                runs.append({"round": round_ + 1, **run})
    finally:
        shutil.rmtree(ray_home, ignore_errors=True)
    rows = [
        [
            r["layout"],
            r["index"]["images_per_s"],
            r["training"]["samples_per_s"],
            f"{r['loadavg_1m'][0]:.1f} -> {r['loadavg_1m'][1]:.1f}",
        ]
        for r in runs
    ]
    print(table(["layout", "index images/s", "training samples/s", "load (1 min)"], rows))
    best = {
        layout: {
            "index_images_per_s": max(r["index"]["images_per_s"] for r in mine),
            "training_samples_per_s": max(r["training"]["samples_per_s"] for r in mine),
        }
        for layout in LAYOUTS
        for mine in [[r for r in runs if r["layout"] == layout]]
    }
    one, two = (best[layout] for layout in LAYOUTS)
    speedup = {key: two[key] / one[key] for key in one}
    print(f"2 nodes / 1 node (best of {args.rounds}): {speedup}; the bound here is 2.0 (2 cores)")
    path = write_json(
        "cluster_scaling",
        {
            "corpus": {
                "source": "chromaref.platform.assets photos_dir",
                "images": runs[0]["index"]["images"],
            },
            "training": {**TRAINING, "steps": args.steps},
            "best": best,
            "speedup_2_nodes": speedup,
            "bound": "2 CPU cores on one machine, shared: at most 2x; no network between nodes",
            "runs": runs,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
