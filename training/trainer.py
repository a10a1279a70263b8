"""Launch a training run on Ray Train: photos, the MLflow run, TorchTrainer, the final model.

    from chromaref.training.config import resolve_config
    from chromaref.training.trainer import train

    result = train(resolve_config({"corpus": "photos/", "steps": 200}))
    result.model_file, result.mlflow_run_id, result.model_version

The driver lists and checks the photos (Ray tasks for large corpora), splits them, retrieves
references when an index is given, opens one MLflow run and starts a `TorchTrainer` (DDP:
gloo on CPU, nccl on GPU) whose workers run `chromaref.training.loop.train_loop`.
`FailureConfig(max_failures)` restarts dead workers from the last checkpoint; `resume(...)`
continues a stopped run (same Ray Train name and storage, same MLflow run, whose id the
checkpoint holds). At the end the last checkpoint becomes a ColorNet model file in `out/`,
logged and registered in MLflow with its validation metrics as tags.

`storage` and `out` may be object-store URIs (`s3://bucket/runs?endpoint_override=host:9000`):
Ray Train then writes checkpoints through that filesystem, the model file is written here and
uploaded whole, and MLflow keeps the run's artifacts in `<storage>/mlartifacts`.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import ray
import ray.train

from chromaref.platform import files
from chromaref.platform.errors import ChromarefError, ConfigError
from chromaref.retrieval.corpus import CorpusItem, list_corpus
from chromaref.retrieval.runtime import ensure_ray
from chromaref.retrieval.storage import Location, locate, upload
from chromaref.training.calibration import fit_on_held_out
from chromaref.training.checkpoint import load_state, model_from_state, model_state
from chromaref.training.config import TrainConfig, resolve_config, to_yaml
from chromaref.training.pairs import (
    Dataset,
    assigned_split,
    drop_duplicates,
    retrieved_neighbours,
    scan_items,
    split_photos,
)
from chromaref.training.tracking import RunTracker, resolve_tracking_uri

logger = logging.getLogger(__name__)

MODEL_FILE = "colornet.pt"
SPLIT_FILE = "dataset_split.json"
SCAN_CHUNK = 256  # photos checked per Ray task (a smaller corpus is checked in-process)
Progress = Callable[[int, int, float | None], None]  # (step, total steps, last loss)


class TrainingDivergedError(ChromarefError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


class WorkersFailedError(ChromarefError):
    """Workers kept failing beyond `max_failures`; the last checkpoint is kept for --resume."""


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced and where to find it."""

    run_name: str
    run_dir: str
    mlflow_run_id: str
    tracking_uri: str
    model_file: Path | str  # a URI when `out` is in an object store
    model_version: str | None
    step: int
    metrics: dict[str, float]
    dataset: dict[str, Any]
    seconds: float


# ---------------------------------------------------------------------------- photos


def list_photos(config: TrainConfig) -> list[CorpusItem]:
    """The corpus listing (no pixels read): cheap, so a bad --corpus fails before Ray starts.

    Raises:
        ConfigError: no corpus given, or it does not exist or is not a corpus.
    """
    if not config.corpus:
        raise ConfigError("no training photos: give --corpus DIR_OR_URI (or corpus: in --config)")
    return list_corpus(_expand(config.corpus))


def prepare_dataset(config: TrainConfig, items: list[CorpusItem]) -> Dataset:
    """Check every listed photo once (Ray tasks for a large corpus), split, and retrieve
    references.

    Raises:
        ConfigError: too few usable photos, or an unusable index.
    """
    chunks = [items[i : i + SCAN_CHUNK] for i in range(0, len(items), SCAN_CHUNK)]
    if len(chunks) > 1:
        scan = ray.remote(num_cpus=1)(scan_items)
        parts = ray.get([scan.remote(chunk, config.data.min_chroma) for chunk in chunks])
    else:
        parts = [scan_items(chunk, config.data.min_chroma) for chunk in chunks]
    photos, skipped = drop_duplicates([entry for part in parts for entry in part])
    for uri, reason in skipped:
        logger.info("skipping %s: %s", uri, reason)
    train, val = split_photos(
        photos,
        val_fraction=config.data.val_fraction,
        seed=config.seed,
        assigned=assigned_split(_expand(config.corpus)),
    )
    neighbours = {}
    if config.index:
        neighbours = retrieved_neighbours(
            _expand(config.index), train + val, held_out=val, k=config.data.neighbours
        )
    return Dataset(
        source=str(config.corpus),
        listed=len(items),
        train=train,
        val=val,
        skipped=skipped,
        neighbours=neighbours,
        index=config.index,
    )


# ---------------------------------------------------------------------------- runs


def _expand(location: str) -> str:
    """A local path with ~ expanded and made absolute (workers run elsewhere); URIs as given."""
    return location if "://" in location else str(Path(location).expanduser().resolve())


def _storage(config: TrainConfig) -> str:
    return _expand(config.storage)


def _run_dir(config: TrainConfig, name: str) -> str:
    return str(locate(_storage(config)).join(name))


def _ray_storage(where: Location) -> dict[str, Any]:
    """Ray Train's storage arguments for a location: a local path, or a path on our own
    filesystem object (which carries the URI's options, e.g. endpoint_override)."""
    if where.is_local:
        return {"storage_path": where.path}
    return {"storage_path": where.path, "storage_filesystem": where.filesystem}


def latest_checkpoint_state(run_dir: str) -> dict[str, Any] | None:
    """The newest checkpoint of a Ray Train run folder (path or URI), or None when it has none."""
    where = locate(run_dir)
    try:
        result = ray.train.Result.from_path(
            where.path, None if where.is_local else where.filesystem
        )
    except RuntimeError:  # no such folder, or no checkpoint was ever written
        return None
    if result.checkpoint is None:
        return None
    with result.checkpoint.as_directory() as folder:
        return load_state(folder)


def resume_config(
    run: str, base: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """The config of a run to continue: its checkpoint's config <- `base` <- `overrides`.

    `run` is a run name under the storage folder, or the path or URI of a run folder. The
    network and its inputs cannot change mid-run.

    Raises:
        ConfigError: no such run, no checkpoint yet, or a change to model or matching.
    """
    if "://" in run:  # a run folder in an object store
        where = locate(run)
        storage, name = str(where.parent()), where.name
    elif "/" in run:  # a path to the run folder
        storage, name = str(Path(run).resolve().parent), Path(run).resolve().name
    else:
        storage, name = _storage(resolve_config(base, overrides, source="--resume")), run
    run_dir = str(locate(storage).join(name))
    state = latest_checkpoint_state(run_dir)
    if state is None:
        raise ConfigError(
            f"cannot resume {run!r}: no checkpoint in {run_dir} (a run keeps one every "
            "checkpoint_every steps); start a new run instead"
        )
    stored = TrainConfig.model_validate(state["config"])
    config = resolve_config(
        {**state["config"], **(base or {})},
        {**(overrides or {}), "name": name, "storage": storage},
        source="--resume",
    )
    for key in ("model", "model_options", "matching"):
        if getattr(config, key) != getattr(stored, key):
            raise ConfigError(
                f"cannot resume {name!r} with another {key}: the checkpoint's network was "
                "trained with the stored one; start a new run to change it"
            )
    return config


def _artifact_root(config: TrainConfig) -> Location | None:
    """Where MLflow keeps a run's artifacts when the run's storage is an object store: beside
    the checkpoints, in `<storage>/mlartifacts` (None: MLflow's local default)."""
    storage = locate(_storage(config))
    return None if storage.is_local else storage.join("mlartifacts")


def _check_backbone(config: TrainConfig) -> None:
    """The backbone loads here (weights present) and has the perceptual levels asked for:
    found now, not as a crash in every worker."""
    from chromaref.platform.models import get_backbone

    levels = len(get_backbone(config.matching.backbone).meta.channels)
    if max(config.loss.perceptual_levels) >= levels:
        raise ConfigError(
            f"loss.perceptual_levels {list(config.loss.perceptual_levels)}: "
            f"{config.matching.backbone} has levels 0..{levels - 1}"
        )


def _initial_weights(config: TrainConfig) -> dict[str, Any] | None:
    """`init`'s network (`model_state`), loaded and checked here: a missing or foreign file is
    one line now, not a crash in every worker."""
    if config.init is None:
        return None
    from chromaref.platform.colorizers.trained import check_matching
    from chromaref.platform.models.colornet import SHIPPED_MODEL, ColorNet
    from chromaref.training.tracking import local_model_file

    source = str(SHIPPED_MODEL) if config.init == "shipped" else config.init
    with local_model_file(source, config.tracking.tracking_uri) as path:
        model = ColorNet.from_file(path)
    check_matching(model, config.matching)  # as `colorize` would: its features, or one line
    logger.info("fine-tuning %s (%s parameters)", config.init, f"{model.num_parameters():,}")
    return model_state(model)


def _check_resources(config: TrainConfig, address: str | None) -> None:
    """A private local Ray cannot grow: refuse a request it can never schedule."""
    resources = ray.cluster_resources()
    need = {"CPU": config.workers * config.cpus_per_worker}
    if config.gpus_per_worker:
        need["GPU"] = config.workers * config.gpus_per_worker
    short = {k: (v, resources.get(k, 0.0)) for k, v in need.items() if resources.get(k, 0.0) < v}
    if not short:
        return
    text = ", ".join(f"{need:g} {kind} (has {have:g})" for kind, (need, have) in short.items())
    if address is None:
        raise ConfigError(
            f"{config.workers} worker(s) need {text}; lower --workers, cpus_per_worker or "
            "--gpus-per-worker, or train on a cluster with --address"
        )
    logger.warning("the cluster lacks %s now; waiting for it to scale up", text)


@ray.remote(num_cpus=0)
class ProgressBoard:
    """Where world rank 0 posts its step and loss for the driver's progress bar."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {"step": 0, "total": 0, "loss": None}

    def update(self, **values: Any) -> None:
        self.state.update(values)

    def get(self) -> dict[str, Any]:
        return self.state


class _ProgressPoller:
    """Reads the progress board from a thread and calls `callback`; `fit()` keeps the main
    thread (Ray Train installs signal handlers there)."""

    def __init__(self, callback: Progress | None) -> None:
        self.board = ProgressBoard.remote() if callback else None
        self.callback, self._stop = callback, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(0.5):
            try:
                state = ray.get(self.board.get.remote(), timeout=5)
            except ray.exceptions.RayError:  # Ray going down: the run ends anyway
                return
            self.callback(state["step"], state["total"], state["loss"])

    def __enter__(self) -> _ProgressPoller:
        if self.board is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.board is not None:
            self._thread.join(timeout=5)


def _trainer_class():
    """Ray Train's `TorchTrainer` without its PlacementGroupCleaner (Ray 2.60).

    The cleaner, a detached actor, asks the state API whether the run's controller lives, and
    the state API finds "the" cluster by the machine's last `ray start` record, not by the
    cluster the cleaner runs in. With a second Ray instance on the machine (a private one
    beside a `ray start` cluster, or two runs) it asks the wrong cluster, finds no controller
    and removes this run's placement group: every worker is killed mid-step, and the run goes
    back to its last checkpoint (seen here: 40 steps lost when a test started a cluster). With
    no other instance it fails on its first query and prints a traceback. Without it, the
    placement group of a controller that dies while its driver lives is released when the
    driver ends (the CLI's driver ends with the run).
    """
    from ray.train.torch import TorchTrainer
    from ray.train.v2._internal.callbacks.placement_group_callback import (
        PlacementGroupCleanerCallback,
    )

    class Trainer(TorchTrainer):
        def _create_default_callbacks(self):
            callbacks = super()._create_default_callbacks()
            return [c for c in callbacks if not isinstance(c, PlacementGroupCleanerCallback)]

    return Trainer


def _trainer(config: TrainConfig, name: str, loop_config: dict[str, Any]):
    from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig

    from chromaref.training.loop import train_loop

    gpu = config.gpus_per_worker > 0
    resources = {"CPU": config.cpus_per_worker, **({"GPU": config.gpus_per_worker} if gpu else {})}
    return _trainer_class()(
        train_loop,
        train_loop_config=loop_config,
        scaling_config=ScalingConfig(
            num_workers=config.workers, use_gpu=gpu, resources_per_worker=resources
        ),
        torch_config=TorchConfig(backend="nccl" if gpu else "gloo"),
        run_config=RunConfig(
            name=name,
            **_ray_storage(locate(_storage(config))),
            failure_config=FailureConfig(max_failures=config.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=config.keep_checkpoints),
            logging_config=LoggingConfig(
                log_level="INFO" if logger.isEnabledFor(logging.INFO) else "ERROR"
            ),
        ),
    )


def _log_dataset(tracker: RunTracker, dataset: Dataset) -> None:
    tracker.log_json(dataset.summary(), "dataset/summary.json")
    tracker.log_text("\n".join(p.uri for p in dataset.train) + "\n", "dataset/train.txt")
    tracker.log_text("\n".join(p.uri for p in dataset.val) + "\n", "dataset/val.txt")
    skipped = "".join(f"{uri}\t{reason}\n" for uri, reason in dataset.skipped)
    tracker.log_text(skipped or "(none)\n", "dataset/skipped.tsv")


def train(
    config: TrainConfig,
    *,
    address: str | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> TrainResult:
    """Run (or, with `resume`, continue: see `resume_config`) one training run to the end.

    Raises:
        ConfigError: bad data, resources, tracking store or run name.
        TrainingDivergedError: the loss became NaN/inf (the last good checkpoint is kept).
        WorkersFailedError: workers failed more than `max_failures` times.
    """
    start = time.perf_counter()
    _check_backbone(config)
    items = list_photos(config)
    ensure_ray(address)
    _check_resources(config, address)
    name = config.name or time.strftime("train-%Y%m%d-%H%M%S")
    tracking_uri = resolve_tracking_uri(config.tracking)
    state = latest_checkpoint_state(_run_dir(config, name))
    if state is not None and not resume:
        raise ConfigError(
            f"run {name!r} already exists in {_storage(config)}; continue it with --resume "
            f"{name}, or pick another name"
        )
    tracking = config.tracking.model_copy(update={"tracking_uri": tracking_uri})
    config = config.model_copy(update={"name": name, "tracking": tracking})
    init = _initial_weights(config) if state is None else None  # a checkpoint supersedes it
    dataset = prepare_dataset(config, items)
    if state is not None:
        tracker = RunTracker(tracking_uri, state["run_id"])
        tracker.reopen()
        tracker.log_text(to_yaml(config), f"config/resumed_at_step_{state['step']:07d}.yaml")
    else:
        tracker = RunTracker.create(
            tracking_uri, config.tracking, run_name=name, artifacts=_artifact_root(config)
        )
        tracker.log_params({**config.model_dump(mode="json"), "dataset": dataset.summary()})
        tracker.log_text(to_yaml(config), "config/train.yaml")
        _log_dataset(tracker, dataset)
    try:
        with _ProgressPoller(progress) as poller:
            loop_config = {
                "config": config.model_dump(mode="json"),
                "run_id": tracker.run_id,
                "tracking_uri": tracking_uri,
                "train": [asdict(p) for p in dataset.train],
                "val": [asdict(p) for p in dataset.val],
                "neighbours": dataset.neighbours,
                "init": init,
                "progress": poller.board,
            }
            result = _fit(_trainer(config, name, loop_config), config, name)
        outcome = result.return_value or {}
        if outcome.get("status") == "diverged":
            kept = result.checkpoint.path if result.checkpoint else "none yet"
            raise TrainingDivergedError(
                f"loss became NaN/inf at step {outcome['step']}; training stopped. Last good "
                f"checkpoint kept: {kept}. Lower optim.lr and continue with --resume {name}"
            )
        final = _finish(config, name, result, tracker, dataset, start)
    except BaseException as exc:
        tracker.finish("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    tracker.finish("FINISHED")
    return final


def _fit(trainer, config: TrainConfig, name: str):
    from ray.train import TrainingFailedError

    try:
        return trainer.fit()
    except TrainingFailedError as exc:
        cause = " ".join(str(exc.__cause__ or exc).split())[:300]
        raise WorkersFailedError(
            f"training failed after {config.max_failures} restart(s): {cause}; the last "
            f"checkpoint is kept: continue with `chromaref train --resume {name}`"
        ) from None


def _finish(
    config: TrainConfig, name: str, result, tracker: RunTracker, dataset: Dataset, start: float
) -> TrainResult:
    """The last checkpoint -> the model file in `out/`, logged and registered. An `out` in an
    object store gets the files written here first, then uploaded whole."""
    if result.checkpoint is None:
        raise WorkersFailedError(f"run {name!r} ended without a checkpoint")
    with result.checkpoint.as_directory() as folder:
        state = load_state(folder)
    out = locate(_expand(config.out))
    with tempfile.TemporaryDirectory(prefix="chromaref-model-") as staging:
        folder = Path(out.path) if out.is_local else Path(staging)
        model_file, version = _write_model(state, folder, config, name, tracker, dataset)
        if not out.is_local:
            model_file = _upload_model(folder, out, name)
    return TrainResult(
        run_name=name,
        run_dir=_run_dir(config, name),
        mlflow_run_id=tracker.run_id,
        tracking_uri=tracker.uri,
        model_file=model_file,
        model_version=version,
        step=state["step"],
        metrics={k: float(v) for k, v in state.get("metrics", {}).items()},
        dataset=dataset.summary(),
        seconds=time.perf_counter() - start,
    )


def _upload_model(folder: Path, out: Location, name: str) -> str:
    """Upload the model and split files (each object appears whole); returns the model's URI.

    Raises:
        ConfigError: the store refused them (the model is still in the run's MLflow artifacts).
    """
    try:
        for file in (SPLIT_FILE, MODEL_FILE):
            upload(folder / file, out.join(file))
    except OSError as exc:
        raise ConfigError(
            f"run {name!r} finished, but writing its model to {out} failed ({exc}); the model "
            "is in the run's MLflow artifacts (model/), and its checkpoints are kept"
        ) from None
    return str(out.join(MODEL_FILE))


def _write_model(
    state: dict[str, Any],
    out: Path,
    config: TrainConfig,
    name: str,
    tracker: RunTracker,
    dataset: Dataset,
) -> tuple[Path, str | None]:
    """The model and split files in the local folder `out`, logged (and the model registered)
    in MLflow; returns the model file and its registered version."""
    metrics = {k: float(v) for k, v in state.get("metrics", {}).items()}
    summary = dataset.summary()
    model = model_from_state(state)
    fit = fit_on_held_out(
        model, config, val=dataset.val, train=dataset.train, neighbours=dataset.neighbours
    )
    if fit is not None:
        logger.info(
            "chroma gate %s on %d held-out pairs: PSNR %.2f dB (%.2f ungated)",
            fit.gate,
            fit.pairs,
            fit.psnr,
            fit.ungated_psnr,
        )
        tracker.log_metrics(fit.metrics(), state["step"])
    model_file = model.save(
        out / MODEL_FILE,
        run_id=tracker.run_id,
        matching=config.matching.model_dump(mode="json"),
        metrics=metrics,
        dataset=summary,
        calibration=fit.gate.as_calibration() if fit else None,
    )
    split = {
        "summary": summary,
        "train": [p.uri for p in dataset.train],
        "val": [p.uri for p in dataset.val],
        "skipped": dataset.skipped,
    }
    files.atomic_write_text(out / SPLIT_FILE, json.dumps(split, indent=2) + "\n")
    tracker.log_file(out / SPLIT_FILE, "dataset")
    version = None
    tags = {k: f"{v:.4g}" for k, v in metrics.items() if k.startswith("val/")}
    tags.update(step=state["step"], train_run=name, split_sha1=summary["split_sha1"])
    if config.tracking.register_model:
        version = tracker.register_model(config.tracking.registered_model, model_file, tags)
    else:
        tracker.log_file(model_file, "model")
    return model_file, version
