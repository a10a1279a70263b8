"""Training throughput with 1 and 2 Ray Train workers, and proof that DDP synchronises
gradients: with the same seed and the same global batch, the 2-worker loss curve is the
1-worker one, step by step.

    python -m benchmarks.training                          # 1 x 8 vs 2 x 4, 96 px, 30 steps
    python -m benchmarks.training --steps 60 --size 128    # longer, larger crops
    python -m benchmarks.training --corpus ~/data/photos   # another corpus (default: bundled)

Three real runs of `chromaref.training.trainer.train` (a private local Ray with 2 CPUs, gloo,
`log_every=1`, a throw-away folder holding the MLflow sqlite store, the Ray Train storage and
the model files): 1 worker x B on 1 thread, 2 workers x B/2 on 1 thread each, and a control,
1 worker x B on 2 threads: the first run's math with another float summation order. Per-step
`train/loss`, its terms and `train/samples_per_s` are read back from MLflow.

Why the 2-worker curve must match: every sample is a function of (seed, epoch, position)
only, rank r of `world` gets the slots `[(k * world + r) * batch, ...)` of step k (so the 2
ranks together get the 1-worker batch, and their network inputs are bitwise those of the
1-worker batch), the loss is a per-sample mean (ColorNet normalises per sample, no batch
statistics), and DDP averages the two ranks' gradients, which is the gradient of the mean
over the global batch. What remains is float32 summation order, which training amplifies
step by step: the control shows by how much.
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
# (workers, CPUs = torch threads per worker): the reference, DDP with the same global batch,
# and the float-noise control: the reference's math with another float summation order.
RUNS = ((1, 1), (2, 1), (1, 2))
# The 2-worker curve is "the same" as the 1-worker one when its largest per-step relative loss
# difference is at most NOISE_FACTOR x the control's, or at most TOLERANCE (float32 sums in
# another order differ by ~1e-7 at first; the training dynamics amplify that over the steps,
# which the control measures). Without synchronised gradients each rank would take its own
# steps and the curves would part by percents from step 2 on.
TOLERANCE = 1e-3
NOISE_FACTOR = 2.0


def bundled_corpus(into: Path) -> Path:
    """The bundled core photos (top-level files of `photos_dir()`, not its corpus/ folder),
    copied into `into`."""
    from chromaref.platform.assets import photos_dir

    into.mkdir(parents=True)
    for path in sorted(photos_dir().iterdir()):
        if path.is_file():
            shutil.copy(path, into / path.name)
    return into


def _config(args: argparse.Namespace, corpus: Path, workers: int, cpus: int, work: Path):
    from chromaref.training.config import resolve_config

    name = f"ddp-w{workers}-b{args.batch // workers}-c{cpus}"
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
            "cpus_per_worker": cpus,
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


def run_once(
    args: argparse.Namespace, corpus: Path, workers: int, cpus: int, work: Path
) -> dict[str, Any]:
    """One real training run; its per-step metrics from MLflow and its final weights' file.
    Ray gives each worker `cpus` threads (OMP_NUM_THREADS), which torch uses."""
    from chromaref.training.trainer import train

    config = _config(args, corpus, workers, cpus, work)
    start_load = os.getloadavg()
    result = train(config)
    history = _history(result.tracking_uri, result.mlflow_run_id, args.steps)
    rates = history["samples_per_s"][1:] or history["samples_per_s"]  # step 1: warm-up
    return {
        "workers": workers,
        "batch_per_worker": config.batch_size,
        "cpus_per_worker": cpus,
        "steps": result.step,
        "seconds": result.seconds,
        "samples_per_s_median": statistics.median(r for r in rates if r is not None),
        "final_loss": history["loss"][-1],
        "history": history,
        "dataset": {k: result.dataset[k] for k in ("train", "val", "skipped")},
        "model_file": str(result.model_file),
        "loadavg": {"start": start_load, "end": os.getloadavg()},
    }


def _rel_diffs(reference: list[float | None], other: list[float | None]) -> list[float]:
    pairs = zip(reference, other, strict=True)
    return [abs(b - a) / max(abs(a), 1e-12) for a, b in pairs if a is not None and b is not None]


def _weights_rel_diff(first: str, second: str) -> float:
    """||w2 - w1|| / ||w1|| over all of ColorNet's parameters and buffers."""
    from chromaref.platform.models import ColorNet

    a, b = (ColorNet.from_file(path).state_dict() for path in (first, second))
    diff = sum(float(((b[k].double() - a[k].double()) ** 2).sum()) for k in a)
    norm = sum(float((a[k].double() ** 2).sum()) for k in a)
    return (diff / max(norm, 1e-30)) ** 0.5


def deviation(reference: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """How far `other`'s curve (and final weights) are from `reference`'s, step by step."""
    per_step = _rel_diffs(reference["history"]["loss"], other["history"]["loss"])
    terms = {}
    for name in METRICS[1:-1]:  # the loss's terms
        diffs = _rel_diffs(reference["history"][name], other["history"][name])
        terms[name] = max(diffs, default=None)
    pairs = zip(reference["history"]["loss"], other["history"]["loss"], strict=True)
    return {
        "rel_loss_diff_per_step": per_step,
        "max_abs_loss_diff": max(abs(b - a) for a, b in pairs),
        "max_rel_loss_diff": max(per_step),
        "max_rel_term_diff": terms,
        "weights_rel_diff": _weights_rel_diff(reference["model_file"], other["model_file"]),
    }


def compare(one: dict[str, Any], two: dict[str, Any], control: dict[str, Any]) -> dict[str, Any]:
    """The 2-worker run and the float-noise control against the 1-worker run, and the verdict:
    the 2-worker curve is within noise when it is no further from the 1-worker one than
    NOISE_FACTOR x the control's, or than TOLERANCE (short runs, where both are ~1e-7)."""
    ddp, noise = deviation(one, two), deviation(one, control)
    loss = one["history"]["loss"]
    bound = max(TOLERANCE, NOISE_FACTOR * noise["max_rel_loss_diff"])
    return {
        "ddp": ddp,
        "control": noise,
        # the curve's own step-to-step change (a new batch every step)
        "loss_step_change": statistics.median(abs(b - a) / a for a, b in pairwise(loss)),
        "tolerance": TOLERANCE,
        "noise_factor": NOISE_FACTOR,
        "bound": bound,
        "within_noise": ddp["max_rel_loss_diff"] <= bound,
        "speedup": two["samples_per_s_median"] / one["samples_per_s_median"],
    }


def print_table(runs: list[dict[str, Any]], comparison: dict[str, Any]) -> None:
    diffs = [
        "-",
        comparison["ddp"]["max_rel_loss_diff"],
        comparison["control"]["max_rel_loss_diff"],
    ]
    rows = [
        [r["workers"], r["batch_per_worker"], r["cpus_per_worker"], r["steps"],
         f"{r['samples_per_s_median']:.2f}", f"{r['seconds']:.0f}", f"{r['final_loss']:.5f}",
         d if isinstance(d, str) else f"{d:.2e}"]
        for r, d in zip(runs, diffs, strict=True)
    ]  # fmt: skip
    headers = ["workers", "batch/worker", "threads/worker", "steps", "samples/s (median)"]
    headers += ["wall s", "final loss", "max rel. loss diff vs the first"]
    print(table(headers, rows))
    ddp, control = comparison["ddp"], comparison["control"]
    verdict = "within" if comparison["within_noise"] else "OUTSIDE"
    print(
        f"\n2 workers vs 1: per-step loss max relative diff {ddp['max_rel_loss_diff']:.2e} "
        f"({verdict} the bound {comparison['bound']:.2e}: max of {TOLERANCE:g} and "
        f"{NOISE_FACTOR:g} x the control's {control['max_rel_loss_diff']:.2e}); final weights "
        f"{ddp['weights_rel_diff']:.2e} vs the control's {control['weights_rel_diff']:.2e} "
        f"(relative L2); the curve's own median step-to-step change "
        f"{comparison['loss_step_change']:.2e}; 2 workers: {comparison['speedup']:.2f}x the "
        "samples/s"
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
            runs = [run_once(args, corpus, w, cpus, work) for w, cpus in RUNS]
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
                "ray_cpus": 2,
            },
            "loadavg": {"start": load_start, "end": os.getloadavg()},
            "runs": runs,
            "comparison": comparison,
        },
    )


if __name__ == "__main__":
    main()
