"""A training run whose checkpoints, model and MLflow artifacts live in an object store (moto's
S3 server on 127.0.0.1): real Ray Train, real MLflow (local sqlite store, artifacts in S3
through boto3), and --resume from the store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from s3server import s3_server

from chromaref.training.config import resolve_config
from chromaref.training.tracking import ENDPOINT_ENV
from chromaref.training.trainer import resume_config

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def s3():
    with s3_server("runs") as server:
        yield server


@pytest.fixture(scope="module")
def local_ray(s3):
    """Started after the S3 credentials are in the environment, so its workers have them;
    not the endpoint: workers must find that in the MLflow experiment."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, local_ray):
    """The module's working folder (its mlruns.db); the endpoint variable that training sets
    for MLflow is removed afterwards."""
    old = Path.cwd()
    workdir = tmp_path_factory.mktemp("train_in_store")
    os.chdir(workdir)
    tracking, endpoint = (
        os.environ.pop("MLFLOW_TRACKING_URI", None),
        os.environ.pop(ENDPOINT_ENV, None),
    )
    yield workdir
    os.chdir(old)
    os.environ.pop(ENDPOINT_ENV, None)
    for name, value in (("MLFLOW_TRACKING_URI", tracking), (ENDPOINT_ENV, endpoint)):
        if value is not None:
            os.environ[name] = value


def test_checkpoints_model_and_artifacts_in_the_store_and_resume_from_it(
    s3, workdir, train_corpus, tiny, tmp_path
):
    from mlflow import MlflowClient

    from chromaref.platform.models import ColorNet
    from chromaref.training.trainer import latest_checkpoint_state, train

    overrides = {
        "corpus": str(train_corpus),
        "name": "tiny",
        "steps": 2,
        "checkpoint_every": 1,
        "storage": s3.uri("runs/train"),
        "out": s3.uri("runs/model"),
    }
    first = train(resolve_config(tiny, overrides))
    run_id = first.mlflow_run_id
    assert first.run_dir == s3.uri("runs/train/tiny")
    assert latest_checkpoint_state(first.run_dir)["step"] == 2
    keys = s3.keys("runs/train")
    assert any(k.startswith("tiny/checkpoint_") and k.endswith("/checkpoint.pt") for k in keys)
    assert s3.keys("runs/model") == ["colornet.pt", "dataset_split.json"]
    assert first.model_file == s3.uri("runs/model/colornet.pt")
    local = tmp_path / "colornet.pt"
    with s3.fs.open_input_stream("runs/model/colornet.pt") as f:
        local.write_bytes(f.read())
    assert ColorNet.from_file(local).meta.run_id == run_id

    artifacts = {k.split("/artifacts/", 1)[1] for k in keys if f"/{run_id}/artifacts/" in k}
    assert {"config/train.yaml", "model/colornet.pt", "dataset/summary.json"} <= artifacts
    assert any(a.startswith("samples/") for a in artifacts)  # logged by rank 0, a Ray worker
    assert (workdir / "mlruns.db").is_file() and not (workdir / "mlartifacts").exists()
    client = MlflowClient(f"sqlite:///{workdir / 'mlruns.db'}")  # MLflow reads them back
    assert [a.path for a in client.list_artifacts(run_id, "config")] == ["config/train.yaml"]

    config = resume_config(first.run_dir, overrides={"steps": 3})
    assert config.storage == s3.uri("runs/train") and config.name == "tiny"
    resumed = train(config, resume=True)
    assert resumed.step == 3 and resumed.mlflow_run_id == run_id
    assert latest_checkpoint_state(first.run_dir)["step"] == 3


def test_an_experiment_keeping_its_artifacts_elsewhere_is_refused(s3, tmp_path):
    """Runs cannot move an existing experiment's artifacts: a run with storage in a store
    names a new experiment instead of silently writing its artifacts to the old place."""
    from chromaref.platform.errors import ConfigError
    from chromaref.retrieval.storage import locate
    from chromaref.training.config import TrackingConfig
    from chromaref.training.tracking import RunTracker

    uri, config = f"sqlite:///{tmp_path / 'mlruns.db'}", TrackingConfig(experiment="local")
    RunTracker.create(uri, config, run_name="first", cwd=tmp_path)  # artifacts in mlartifacts/
    with pytest.raises(ConfigError, match=r"keeps its artifacts in file:.*tracking\.experiment"):
        RunTracker.create(uri, config, run_name="second", artifacts=locate(s3.uri("runs/x")))
