"""`chromaref train`: train the colorization sub-net with Ray Train, tracked in MLflow.

    chromaref train --corpus photos/ --steps 500                       # local Ray, 1 worker
    chromaref train --config configs/train.yaml --workers 2            # YAML + overrides
    chromaref train --config train.yaml --set loss.perceptual_weight=0.5 --set optim.lr=1e-4
    chromaref train --resume train-20250101-120000 --steps 2000        # continue a run
    chromaref train --corpus photos/ --init shipped --steps 300        # fine-tune it
    chromaref train --address auto --workers 8 --gpus-per-worker 1     # a running cluster

Settings resolve as defaults <- --config file <- options and --set, and are validated before
any worker starts (a bad key or value: one line, exit 2). See docs/training.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from chromaref.cli._common import EXIT_PARTIAL, console, friendly_errors, setup_logging

# Worker lines Ray Train 2.60 prints whatever its LoggingConfig says: one per report, and,
# on a local Ray without a dashboard, a state-API warning every second from its placement-group
# cleaner. They would bury the progress bar; --verbose shows them.
RAY_NOISE = (
    "Reporting training result|Failed to query Ray Train Controller actor state|PreemptionWatcher"
)


class _StepsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f} steps/s" if speed else "- steps/s")


@friendly_errors
def train_command(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML file with any training setting.")
    ] = None,
    corpus: Annotated[
        str | None, typer.Option(help="Color photos: a folder, Parquet, tar shards or a URI.")
    ] = None,
    index: Annotated[
        str | None, typer.Option(help="Index for retrieved references (perceptual branch).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Ray Train workers (DDP).")] = None,
    gpus_per_worker: Annotated[float | None, typer.Option(help="GPUs per worker.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training photos.")] = None,
    steps: Annotated[int | None, typer.Option(help="Optimizer steps (overrides --epochs).")] = None,
    resume: Annotated[
        str | None, typer.Option(help="Continue run RUN (its name, or its folder).")
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(
            help="Fine-tune: start from this model (`shipped`, a colornet file, runs:/<id>/model "
            "or models:/chromaref-colorizer/<version>) instead of new weights."
        ),
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster (host:port, ray://..., auto); $RAY_ADDRESS.")
    ] = None,
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="Model folder or object-store URI.")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(help="Where Ray Train keeps run folders and checkpoints: a folder or URI."),
    ] = None,
    settings: Annotated[
        list[str] | None, typer.Option("--set", help="KEY=VALUE for any setting (optim.lr=1e-4).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details.")] = False,
) -> None:
    """Train the learned colorization sub-net on color photos (Ray Train DDP, MLflow tracking);
    the final model is written to --out and registered as `chromaref-colorizer`."""
    if not verbose:  # read by Ray when it is imported, below
        os.environ.setdefault("RAY_DEDUP_LOGS_SKIP_REGEX", RAY_NOISE)
    from chromaref.platform.settings import parse_assignment, read_yaml
    from chromaref.training.config import resolve_config
    from chromaref.training.trainer import WorkersFailedError, resume_config, train

    setup_logging(verbose)
    base = read_yaml(config) if config else None
    options: dict[str, Any] = {
        "corpus": corpus,
        "index": index,
        "workers": workers,
        "gpus_per_worker": gpus_per_worker,
        "epochs": epochs,
        "steps": steps,
        "init": init,
        "out": out,
        "storage": storage,
    }
    overrides = {k: v for k, v in options.items() if v is not None}
    overrides.update(parse_assignment(text) for text in settings or ())
    if resume:
        resolved = resume_config(resume, base, overrides)
    else:
        resolved = resolve_config(base, overrides, source=str(config or "settings"))
    columns = (
        TextColumn("training"),
        BarColumn(),
        MofNCompleteColumn(),
        _StepsPerSecond(),
        TextColumn("loss {task.fields[loss]}"),
        TimeRemainingColumn(),
    )
    show = not quiet and sys.stderr.isatty()
    with Progress(*columns, console=console, disable=not show) as bar:
        task = bar.add_task("training", total=None, loss="-")

        def on_progress(step: int, total: int, loss: float | None) -> None:
            shown = f"{loss:.4f}" if loss is not None else "-"
            bar.update(task, completed=step, total=total or None, loss=shown)

        try:
            result = train(resolved, address=address, resume=bool(resume), progress=on_progress)
        except WorkersFailedError as exc:
            console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(EXIT_PARTIAL) from None
    console.print(
        f"trained {result.run_name}: {result.step} steps in {result.seconds:.0f} s; "
        f"MLflow run {result.mlflow_run_id} ({result.tracking_uri})",
        highlight=False,
    )
    shown = {k: round(v, 3) for k, v in result.metrics.items() if k.startswith("val/")}
    if shown:
        console.print(f"validation: {shown}", highlight=False)
    if result.model_version:
        console.print(f"registered chromaref-colorizer version {result.model_version}")
    typer.echo(str(result.model_file))
