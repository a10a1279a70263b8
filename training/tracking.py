"""MLflow, in one place: the only chromaref module that imports mlflow.

One MLflow run per training run. The driver creates it (or reopens it on `--resume`) and
passes its id on; world rank 0 of every attempt, restarts included, logs into that same run by
id through `MlflowClient`, so no process depends on MLflow's global "active run".

Default store: `sqlite:///mlruns.db` in the working folder, with artifacts under
`mlartifacts/` (the experiment's artifact_location); any `MLFLOW_TRACKING_URI` replaces it.
A local sqlite file serves one machine: on a multi-node cluster point every node at a
tracking server (`MLFLOW_TRACKING_URI=http://...`).

Artifacts in an object store: a run whose storage is `s3://...` gets an experiment whose
artifact_location is there. MLflow reaches S3 through boto3, which takes an S3-compatible
endpoint only from $MLFLOW_S3_ENDPOINT_URL, so the experiment records the endpoint of our URI
(`endpoint_override`) as a tag, and every process that opens one of its runs (the driver, rank
0 of each attempt, `--model runs:/...`) sets that variable from it unless already set.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from chromaref.platform.errors import ConfigError, WeightsError, first_line
from chromaref.retrieval.storage import Location
from chromaref.training.config import TrackingConfig

logger = logging.getLogger(__name__)

DEFAULT_DB = "mlruns.db"
DEFAULT_ARTIFACTS = "mlartifacts"
MODEL_ARTIFACT_DIR = "model"
ENDPOINT_TAG = "chromaref.s3_endpoint_url"
ENDPOINT_ENV = "MLFLOW_S3_ENDPOINT_URL"
_MAX_PARAM_CHARS = 500


def resolve_tracking_uri(config: TrackingConfig, cwd: Path | None = None) -> str:
    """The config's URI, else $MLFLOW_TRACKING_URI, else an absolute sqlite file in `cwd`
    (absolute, because Ray workers run in other folders)."""
    cwd = (cwd or Path.cwd()).resolve()
    return (
        config.tracking_uri
        or os.environ.get("MLFLOW_TRACKING_URI")
        or f"sqlite:///{cwd / DEFAULT_DB}"
    )


def _client(uri: str):
    import mlflow
    from mlflow import MlflowClient

    for name in ("mlflow", "alembic"):  # table creation and migrations chatter at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)  # the registry URI follows it
    return MlflowClient(tracking_uri=uri)


def _use_endpoint(client, experiment_id: str) -> None:
    """Point MLflow's boto3 at the S3-compatible endpoint the experiment recorded, if any."""
    endpoint = client.get_experiment(experiment_id).tags.get(ENDPOINT_TAG)
    if endpoint:
        os.environ.setdefault(ENDPOINT_ENV, endpoint)


def _experiment(client, config: TrackingConfig, artifacts: Location | None, cwd: Path) -> str:
    """The id of the config's experiment, created with its artifact location: `artifacts`
    (with its endpoint as a tag), else `mlartifacts/` in `cwd`.

    Raises:
        ConfigError: the experiment exists and keeps its artifacts elsewhere than `artifacts`.
    """
    wanted = artifacts.without_options() if artifacts else None
    experiment = client.get_experiment_by_name(config.experiment)
    if experiment is None:
        endpoint = artifacts.endpoint_url() if artifacts else None
        return client.create_experiment(
            config.experiment,
            artifact_location=wanted or (cwd / DEFAULT_ARTIFACTS).as_uri(),
            tags={ENDPOINT_TAG: endpoint} if endpoint else None,
        )
    if wanted and experiment.artifact_location.rstrip("/") != wanted.rstrip("/"):
        raise ConfigError(
            f"MLflow experiment {config.experiment!r} keeps its artifacts in "
            f"{experiment.artifact_location}, not {wanted} beside this run's storage; name "
            "another experiment for it (--set tracking.experiment=NAME)"
        )
    return experiment.experiment_id


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """{"loss": {"chroma_weight": 1}} -> {"loss.chroma_weight": "1"}, each value cut to what
    an MLflow param holds."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:_MAX_PARAM_CHARS]
    return flat


class RunTracker:
    """One MLflow run addressed by id; every method is safe to call from any process."""

    def __init__(self, uri: str, run_id: str) -> None:
        self.uri, self.run_id = uri, run_id
        self.client = _client(uri)
        _use_endpoint(self.client, self.client.get_run(run_id).info.experiment_id)

    @classmethod
    def create(
        cls,
        uri: str,
        config: TrackingConfig,
        run_name: str,
        cwd: Path | None = None,
        artifacts: Location | None = None,
    ):
        """A new run in the config's experiment, which is created with its artifacts in
        `artifacts` (an object-store folder) or else `mlartifacts/` in `cwd`.

        Raises:
            ConfigError: the tracking store cannot be reached or written, or the experiment
                keeps its artifacts elsewhere than `artifacts`.
        """
        try:
            client = _client(uri)
            experiment_id = _experiment(client, config, artifacts, (cwd or Path.cwd()).resolve())
            run = client.create_run(experiment_id, run_name=run_name)
        except ConfigError:
            raise
        except Exception as exc:  # mlflow raises many types for a bad URI or store
            raise ConfigError(f"MLflow tracking at {uri}: {first_line(exc)}") from None
        logger.info("MLflow run %s (%s) at %s", run.info.run_id, run_name, uri)
        return cls(uri, run.info.run_id)

    def reopen(self) -> None:
        """Mark a resumed run as running again."""
        self.client.update_run(self.run_id, status="RUNNING")

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = list(flatten(params).items())
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            batch = [Param(k, v) for k, v in items[start : start + 100]]
            self.client.log_batch(self.run_id, params=batch)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_json(self, value: Any, artifact_file: str) -> None:
        self.log_text(json.dumps(value, indent=2, sort_keys=True), artifact_file)

    def log_image(self, rgb: np.ndarray, artifact_file: str) -> None:
        self.client.log_image(self.run_id, rgb, artifact_file=artifact_file)

    def log_file(self, path: Path, artifact_path: str) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def register_model(self, name: str, model_file: Path, tags: dict[str, Any]) -> str:
        """Log the model file under `model/` and register that folder as a new version of
        `name` (an artifact-backed version: no Python code is pickled); returns the version.
        """
        self.log_file(model_file, MODEL_ARTIFACT_DIR)
        run = self.client.get_run(self.run_id)
        source = f"{run.info.artifact_uri}/{MODEL_ARTIFACT_DIR}"
        if self.client.search_registered_models(filter_string=f"name = '{name}'") == []:
            self.client.create_registered_model(name)
        version = self.client.create_model_version(
            name, source=source, run_id=self.run_id, tags={k: str(v) for k, v in tags.items()}
        )
        logger.info("registered %s version %s", name, version.version)
        return str(version.version)

    def finish(self, status: str = "FINISHED") -> None:
        """End the run: FINISHED, FAILED or KILLED."""
        self.client.set_terminated(self.run_id, status=status)


MODEL_URI_SCHEMES = ("runs:/", "models:/")


def _run_of(client, uri: str) -> str | None:
    """The run behind `runs:/<id>/...` or `models:/<name>/<version>`; None for other forms
    (aliases, `latest`)."""
    parts = uri.split(":/", 1)[1].strip("/").split("/")
    if uri.startswith("runs:/"):
        return parts[0]
    if len(parts) == 2 and parts[1].isdigit():
        return client.get_model_version(parts[0], parts[1]).run_id
    return None


def fetch_model_file(uri: str, dest: Path, tracking_uri: str | None = None) -> Path:
    """The colornet file behind `runs:/<id>/model` or `models:/<name>/<version>`, downloaded
    into `dest` from the tracking store (default: $MLFLOW_TRACKING_URI, else ./mlruns.db).

    Raises:
        WeightsError: the run, model or version does not exist, or holds no model file.
    """
    uri_store = tracking_uri or resolve_tracking_uri(TrackingConfig())
    if uri_store.startswith("sqlite:///") and not Path(uri_store[len("sqlite:///") :]).is_file():
        raise WeightsError(  # never create an empty store just to look a model up
            f"{uri}: no MLflow store at {uri_store}; run from the folder where `chromaref train` "
            "ran, or set MLFLOW_TRACKING_URI"
        )
    try:
        client = _client(uri_store)
        run_id = _run_of(client, uri)
        if run_id:  # its artifacts may be in an object store behind an endpoint
            _use_endpoint(client, client.get_run(run_id).info.experiment_id)
        import mlflow.artifacts

        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest)))
    except Exception as exc:  # mlflow raises MlflowException, OSError, ... for a bad uri
        reason = first_line(exc)
        raise WeightsError(f"{uri}: cannot fetch it from {uri_store} ({reason})") from None
    files = sorted(local.rglob("*.pt")) if local.is_dir() else [local]
    if len(files) != 1:
        raise WeightsError(f"{uri}: expected one colornet .pt file there, found {len(files)}")
    return files[0]


@contextmanager
def local_model_file(model: str, tracking_uri: str | None = None) -> Iterator[str]:
    """A local path for `model`: the path itself, or an MLflow model URI downloaded into a
    temporary folder that lives as long as the block.

    Raises:
        WeightsError: as `fetch_model_file`.
    """
    if not model.startswith(MODEL_URI_SCHEMES):
        yield model
        return
    with tempfile.TemporaryDirectory(prefix="chromaref-model-") as tmp:
        yield str(fetch_model_file(model, Path(tmp), tracking_uri))
