"""The per-worker training function that Ray Train runs on every worker: one visible loop.

    chromaref train --corpus photos/ --steps 200                  # 1 worker, local Ray
    chromaref train --corpus photos/ --workers 2 --epochs 5       # 2-worker DDP (gloo on CPU)
    RAY_ADDRESS=head:6379 chromaref train --config train.yaml --workers 8 --gpus-per-worker 1

(`chromaref.training.trainer.train` launches it; nothing here is called directly.)

Per step: build this rank's pairs (data loader), run the frozen similarity sub-net under
no_grad (`make_batch`), ColorNet forward, branch losses, one all-reduce of the loss sums and a
non-finite flag (so every rank stops at the same step), backward, clip, the step's learning
rate (`OptimConfig.lr_at`), step. Every `checkpoint_every` steps and at the end every rank
calls `ray.train.report` (rank 0 with the checkpoint); at each epoch's end the held-out photos
are scored. Only world rank 0 talks to MLflow and to the driver's progress board.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from collections import defaultdict
from typing import Any

import numpy as np
import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from chromaref.platform.config import PipelineConfig
from chromaref.platform.grid import make_grid
from chromaref.platform.pipeline import ColorizationPipeline
from chromaref.training.checkpoint import load_state, model_from_state, new_colornet, save_state
from chromaref.training.config import TrainConfig
from chromaref.training.inputs import make_batch
from chromaref.training.losses import TERMS, PerceptualLoss, compute_losses
from chromaref.training.pairs import (
    PairDataset,
    PairMaker,
    Photo,
    RankBatches,
    collate_pairs,
    steps_per_epoch,
)
from chromaref.training.tracking import RunTracker
from chromaref.training.validation import Scores, score_pairs, validation_pairs

logger = logging.getLogger(__name__)

GRID_ROWS = 4
# Ray Train 2.60 registers a checkpoint only after polling every rank's report (every 2 s): a
# worker that dies sooner takes its report along and the restart uses the checkpoint before.
FAIL_DELAY_S = 5.0


def train_loop(loop_config: dict[str, Any]) -> dict[str, Any]:
    """Train until the configured step; rank 0 returns {"status", "step", "metrics"}:
    status "done", or "diverged" when the loss became NaN/inf (nothing is reported then, so
    the last good checkpoint stays the latest)."""
    config = TrainConfig.model_validate(loop_config["config"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    master = rank == 0
    device = ray.train.torch.get_device()
    torch.manual_seed(config.seed)

    # -- models: the frozen similarity sub-net (backbone in the pipeline) and ColorNet
    pipeline = ColorizationPipeline(PipelineConfig(matching=config.matching), device=device)
    checkpoint = ray.train.get_checkpoint()  # set after a failure, or with --resume
    state = None
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = load_state(folder)
    # the network: the checkpoint's, else the one to fine-tune (`init`), else a new one
    start = state or loop_config.get("init")
    model = model_from_state(start) if start else new_colornet(config, pipeline.backbone)
    model = ray.train.torch.prepare_model(model)  # to the device; DDP when world > 1
    raw_model = model.module if hasattr(model, "module") else model
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=config.optim.lr,
        betas=config.optim.betas,
        weight_decay=config.optim.weight_decay,
    )
    run_id, step, metrics = loop_config["run_id"], 0, {}
    if state:  # the optimizer's state follows its parameters onto the device
        optimizer.load_state_dict(state["optimizer"])
        for group in optimizer.param_groups:  # a resume may change it on purpose
            group.update(weight_decay=config.optim.weight_decay)
        step, run_id, metrics = state["step"], state["run_id"], state.get("metrics", {})
    perceptual = PerceptualLoss(pipeline.backbone, config.loss.perceptual_levels)
    tracker = RunTracker(loop_config["tracking_uri"], run_id) if master else None
    progress = loop_config.get("progress") if master else None
    if tracker and checkpoint is not None:
        tracker.log_metrics({"train/resumed_from_step": step}, step)

    # -- data: this rank's batches from the current step on
    train = [Photo(**p) for p in loop_config["train"]]
    val = [Photo(**p) for p in loop_config["val"]]
    neighbours = loop_config["neighbours"]
    size = config.matching.working_size
    per_epoch = steps_per_epoch(len(train), config.batch_size, world)
    total_steps = config.steps or config.epochs * per_epoch
    batches = RankBatches(
        len(train),
        batch_size=config.batch_size,
        rank=rank,
        world=world,
        seed=config.seed,
        start_step=step,
        total_steps=total_steps,
    )
    loader = DataLoader(
        PairDataset(PairMaker(train, train, neighbours, config.data, size), config.seed),
        batch_sampler=batches,
        collate_fn=collate_pairs,
        num_workers=config.data.loader_workers,
    )
    val_maker = PairMaker(val, train, neighbours, config.data, size)
    val_pairs = validation_pairs(val_maker, config.seed, config.data.max_val_images)[rank::world]
    if progress is not None:
        progress.update.remote(step=step, total=total_steps)

    # -- the loop
    sums: dict[str, float] = defaultdict(float)
    interval_start = time.perf_counter()
    for pairs in loader:
        step += 1
        if _inject_failure(config, step, rank, world, resumed=checkpoint is not None):
            time.sleep(FAIL_DELAY_S)  # test-only: a worker dying mid-run, once the controller
            os._exit(1)  # has collected the last report (it polls every 2 s)
        batch = make_batch(pipeline, pairs, raw_model.config)
        losses = compute_losses(model(batch.inputs), batch, perceptual, config.loss)
        loss = losses.total
        if config.debug.nan_at_step == step:
            loss = loss * float("nan")  # test-only: a diverging run
        reduced = _all_reduce(_loss_stats(loss, losses, len(batch)), device)
        if reduced["nonfinite"] > 0:
            if tracker:
                tracker.log_metrics({"train/diverged_at_step": step}, step)
            return {"status": "diverged", "step": step, "metrics": metrics}
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
        lr = config.optim.lr_at(step, total_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()

        for key, value in reduced.items():
            sums[key] += value
        if master and (step % config.log_every == 0 or step == total_steps):
            seconds = time.perf_counter() - interval_start
            logged = _train_metrics(sums, samples_per_s=sums["samples"] / max(seconds, 1e-9))
            logged["train/epoch"] = (step - 1) // per_epoch + 1
            logged["train/lr"] = lr
            tracker.log_metrics(logged, step)
            metrics.update(logged)
            if progress is not None:
                progress.update.remote(step=step, total=total_steps, loss=logged["train/loss"])
        if step % (config.validate_every or per_epoch) == 0 or step == total_steps:
            epoch = math.ceil(step / per_epoch)
            scores, validated = _validate(raw_model, pipeline, val_pairs, config, device, master)
            metrics.update(validated)
            if tracker:
                tracker.log_metrics({**validated, "val/epoch": epoch}, step)
                if scores.rows:
                    grid = make_grid(scores.rows, labels=scores.labels, cell_height=128)
                    tracker.log_image(grid, f"samples/epoch_{epoch:03d}_step_{step:07d}.png")
        if step % config.checkpoint_every == 0 or step == total_steps:
            _report(step, metrics, raw_model, optimizer, config, run_id, master)
        if step % config.log_every == 0:  # throughput counts training steps only
            sums.clear()
            interval_start = time.perf_counter()
    return {"status": "done", "step": step, "metrics": metrics}


# ---------------------------------------------------------------------------- helpers


def _inject_failure(
    config: TrainConfig, step: int, rank: int, world: int, *, resumed: bool
) -> bool:
    """Test-only: rank 1 (rank 0 alone) dies at `debug.fail_at_step` in an attempt that did
    not start from a checkpoint, so the restart gets past it."""
    return config.debug.fail_at_step == step and rank == min(1, world - 1) and not resumed


def _loss_stats(loss: torch.Tensor, losses, samples: int) -> dict[str, float]:
    """This rank's sums for the all-reduce: sums and counts per term, a non-finite flag."""
    stats = {"loss": float(loss.detach()) * samples, "samples": float(samples)}
    for term in TERMS:
        total, count = losses.terms[term]
        stats[term], stats[f"{term}_n"] = float(total), float(count)
    stats["nonfinite"] = float(not all(math.isfinite(v) for v in stats.values()))
    return stats


def _all_reduce(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Sum a dict of floats over all ranks (one collective; a no-op on a single process)."""
    tensor = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    tensor = torch.nan_to_num(tensor, nan=0.0, posinf=0.0, neginf=0.0)  # the flag says it
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor)
    return dict(zip(values, tensor.tolist(), strict=True))


def _train_metrics(sums: dict[str, float], samples_per_s: float) -> dict[str, float]:
    """Mean loss and per-term means over the interval, all workers together."""
    metrics = {"train/loss": sums["loss"] / max(sums["samples"], 1.0)}
    for term in TERMS:
        if sums[f"{term}_n"]:
            metrics[f"train/{term}"] = sums[term] / sums[f"{term}_n"]
    metrics["train/samples_per_s"] = samples_per_s
    return metrics


def _validate(
    model, pipeline, pairs, config: TrainConfig, device, master: bool
) -> tuple[Scores, dict[str, float]]:
    """Score this rank's share of the validation pairs; metrics averaged over all ranks."""
    model.eval()
    scores = score_pairs(model, pipeline, pairs, config.loss, grid_rows=GRID_ROWS if master else 0)
    model.train()
    keys = scores.keys()
    values = [scores.sums.get(k, 0.0) for k in keys] + [scores.counts.get(k, 0) for k in keys]
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor)
    totals = tensor.tolist()
    n = len(keys)
    return scores, {k: totals[i] / totals[n + i] for i, k in enumerate(keys) if totals[n + i]}


def _report(step, metrics, model, optimizer, config, run_id, master: bool) -> None:
    """Every rank reports (Ray Train needs the same number of calls on each); rank 0 attaches
    the checkpoint, written into a fresh folder that Ray persists whole."""
    reported = {"step": step, **{k: v for k, v in metrics.items() if np.isfinite(v)}}
    if not master:
        ray.train.report(reported)
        return
    with tempfile.TemporaryDirectory(prefix="chromaref-ckpt-") as folder:
        save_state(
            folder,
            model=model,
            optimizer=optimizer,
            step=step,
            config=config,
            run_id=run_id,
            metrics=metrics,
        )
        ray.train.report(
            reported,
            checkpoint=ray.train.Checkpoint.from_directory(folder),
            checkpoint_dir_name=f"checkpoint_step_{step:07d}",
        )
