"""Training throughput with 1 and 2 Ray Train workers, and proof that DDP synchronises
gradients: with the same seed and the same global batch, the 2-worker loss curve is the
1-worker one, step by step.

    python -m benchmarks.training                          # 1 x 8 vs 2 x 4, 96 px, 30 steps
    python -m benchmarks.training --steps 60 --size 128    # longer, larger crops
    python -m benchmarks.training --corpus ~/data/photos   # another corpus (default: bundled)

Both runs call the real `chromaref.training.trainer.train` (a private local Ray with 2 CPUs,
1 CPU per worker, gloo) with `log_every=1`, in a throw-away folder holding the MLflow sqlite
store, the Ray Train storage and the model files; per-step `train/loss`, its terms and
`train/samples_per_s` are read back from MLflow. Why the curves must match: every sample is a
function of (seed, epoch, position) only, rank r of `world` gets the slots
`[(k * world + r) * batch, ...)` of step k (so the 2 ranks together get the 1-worker batch),
the loss is a per-sample mean (ColorNet normalises per sample, no batch statistics), and DDP
averages the two ranks' gradients, which is the gradient of the mean over the global batch.
What remains is float32 summation order.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import statistics
import tempfile
from itertools import pairwise
from pathlib import Path
from typing import Any

from benchmarks._common import table, write_json

logger = logging.getLogger(__name__)

METRICS = ("loss", "chroma", "perceptual", "perceptual_ab", "smoothness", "samples_per_s")
# Largest per-step |loss(2 workers) - loss(1 worker)| / loss(1 worker) accepted as "the same
# curve": float32 sums in another order (conv and all-reduce) differ by ~1e-7, and Adam can
# amplify that over a few dozen steps; an unsynchronised run drifts by whole percents.
TOLERANCE = 1e-3


def bundled_corpus(into: Path) -> Path:
    """The bundled core photos (top-level files of `photos_dir()`, not its corpus/ folder),
    copied into `into`."""
    from chromaref.platform.assets import photos_dir

    into.mkdir(parents=True)
    for path in sorted(photos_dir().iterdir()):
        if path.is_file():
            shutil.copy(path, into / path.name)
    return into


def _config(args: argparse.Namespace, corpus: Path, workers: int, work: Path):
    from chromaref.training.config import resolve_config

    name = f"ddp-w{workers}-b{args.batch // workers}"
    return resolve_config(
        {
            "corpus": str(corpus),
            "name": name,
            "storage": str(work / "runs"),
            "out": str(work / name),
            "model": args.model,
            "matching": {"working_size": args.size},
            "steps": args.steps,
            "batch_size": args.batch // workers,
            "workers": workers,
            "cpus_per_worker": 1,
            "log_every": 1,
            "validate_every": args.steps,  # once, at the end: not inside the timed steps
            "checkpoint_every": args.steps,
            "seed": args.seed,
            "data": {"max_val_images": 2},
            "tracking": {
                "tracking_uri": f"sqlite:///{work / 'mlruns.db'}",
                "experiment": "benchmark-training",
                "register_model": False,
            },
        },
        source="benchmarks.training",
    )


def _history(tracking_uri: str, run_id: str, steps: int) -> dict[str, list[float | None]]:
    """Per-step values of each metric (None at a step where it was not logged, e.g. a branch
    without samples in that batch)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    history = {}
    for name in METRICS:
        by_step = {m.step: m.value for m in client.get_metric_history(run_id, f"train/{name}")}
        history[name] = [by_step.get(step) for step in range(1, steps + 1)]
    return history


def run_once(args: argparse.Namespace, corpus: Path, workers: int, work: Path) -> dict[str, Any]:
    """One real training run; its per-step metrics from MLflow and its final weights' file."""
    from chromaref.training.trainer import train

    config = _config(args, corpus, workers, work)
    start_load = os.getloadavg()
    result = train(config)
    history = _history(result.tracking_uri, result.mlflow_run_id, args.steps)
    rates = history["samples_per_s"][1:] or history["samples_per_s"]  # step 1: warm-up
    return {
        "workers": workers,
        "batch_per_worker": config.batch_size,
        "steps": result.step,
        "seconds": result.seconds,
        "samples_per_s_median": statistics.median(r for r in rates if r is not None),
        "final_loss": history["loss"][-1],
        "history": history,
        "dataset": {k: result.dataset[k] for k in ("train", "val", "skipped")},
        "model_file": str(result.model_file),
        "loadavg": {"start": start_load, "end": os.getloadavg()},
    }


def _max_rel_diff(reference: list[float | None], other: list[float | None]) -> float | None:
    pairs = [(a, b) for a, b in zip(reference, other, strict=True) if a is not None and b]
    return max((abs(b - a) / max(abs(a), 1e-12) for a, b in pairs), default=None)


def _weights_rel_diff(first: str, second: str) -> float:
    """||w2 - w1|| / ||w1|| over all of ColorNet's parameters and buffers."""
    from chromaref.platform.models import ColorNet

    a, b = (ColorNet.from_file(path).state_dict() for path in (first, second))
    diff = sum(float(((b[k].double() - a[k].double()) ** 2).sum()) for k in a)
    norm = sum(float((a[k].double() ** 2).sum()) for k in a)
    return (diff / max(norm, 1e-30)) ** 0.5


def compare(one: dict[str, Any], two: dict[str, Any]) -> dict[str, Any]:
    """How far the 2-worker curve is from the 1-worker one, against the curve's own noise."""
    loss_1, loss_2 = one["history"]["loss"], two["history"]["loss"]
    per_step = [abs(b - a) / a for a, b in zip(loss_1, loss_2, strict=True)]
    # the curve's own step-to-step change (a new batch every step): the noise it is read in
    noise = statistics.median(abs(b - a) / a for a, b in pairwise(loss_1))
    terms = {
        name: _max_rel_diff(one["history"][name], two["history"][name])
        for name in METRICS
        if name not in ("loss", "samples_per_s")
    }
    return {
        "rel_loss_diff_per_step": per_step,
        "max_abs_loss_diff": max(abs(b - a) for a, b in zip(loss_1, loss_2, strict=True)),
        "max_rel_loss_diff": max(per_step),
        "max_rel_term_diff": terms,
        "loss_step_noise": noise if len(loss_1) > 1 else None,
        "weights_rel_diff": _weights_rel_diff(one["model_file"], two["model_file"]),
        "tolerance": TOLERANCE,
        "within_tolerance": max(per_step) <= TOLERANCE,
        "speedup": two["samples_per_s_median"] / one["samples_per_s_median"],
    }


def print_table(runs: list[dict[str, Any]], comparison: dict[str, Any]) -> None:
    rows = [
        [r["workers"], r["batch_per_worker"], r["steps"], f"{r['samples_per_s_median']:.2f}",
         f"{r['seconds']:.0f}", f"{r['final_loss']:.5f}",
         "-" if r["workers"] == 1 else f"{comparison['max_rel_loss_diff']:.2e}"]
        for r in runs
    ]  # fmt: skip
    headers = ["workers", "batch/worker", "steps", "samples/s (median)", "wall s", "final loss"]
    print(table([*headers, "max rel. loss diff vs 1 worker"], rows))
    verdict = "within" if comparison["within_tolerance"] else "OUTSIDE"
    print(
        f"\nper-step loss: max |diff| {comparison['max_abs_loss_diff']:.2e}, relative "
        f"{comparison['max_rel_loss_diff']:.2e} ({verdict} tolerance {TOLERANCE:g}); the "
        f"curve's own median step-to-step change {comparison['loss_step_noise'] or 0:.2e}; "
        f"final weights differ by {comparison['weights_rel_diff']:.2e} (relative L2); "
        f"2 workers: {comparison['speedup']:.2f}x the samples/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per run")
    parser.add_argument("--batch", type=int, default=8, help="global batch (even): 1 x B, 2 x B/2")
    parser.add_argument("--size", type=int, default=96, help="working size (square crops), px")
    parser.add_argument("--model", default="colornet_small", help="ColorNet variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", type=Path, help="photo folder (default: the bundled photos)")
    args = parser.parse_args()
    if args.batch < 2 or args.batch % 2:
        parser.error("--batch must be even: 2 workers get half of it each")
    if args.steps < 2:
        parser.error("--steps must be at least 2 (the first step is warm-up)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    from chromaref.retrieval.runtime import ensure_ray

    with tempfile.TemporaryDirectory(prefix="chromaref-bench-training-") as tmp:
        work = Path(tmp)
        corpus = args.corpus.resolve() if args.corpus else bundled_corpus(work / "corpus")
        load_start = os.getloadavg()
        with contextlib.chdir(work):  # MLflow's default artifact folder is the working one
            ensure_ray(num_cpus=2, log_to_driver=False)
            runs = [run_once(args, corpus, workers, work) for workers in (1, 2)]
        comparison = compare(*runs)
    print_table(runs, comparison)
    for run in runs:
        del run["model_file"]  # gone with the temporary folder
    write_json(
        "training",
        {
            "settings": {
                "steps": args.steps,
                "global_batch": args.batch,
                "working_size": args.size,
                "model": args.model,
                "seed": args.seed,
                "corpus": str(args.corpus) if args.corpus else "bundled photos (top level)",
                "cpus_per_worker": 1,
                "ray_cpus": 2,
            },
            "loadavg": {"start": load_start, "end": os.getloadavg()},
            "runs": runs,
            "comparison": comparison,
        },
    )


if __name__ == "__main__":
    main()
