"""Real Ray Train runs (2 gloo workers on a local Ray) tracked in a real MLflow sqlite store:
metrics and a registered model, a worker killed mid-run, a diverging loss, --resume."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chromaref.platform.errors import ConfigError
from chromaref.training.config import resolve_config
from chromaref.training.trainer import resume_config

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def local_ray():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    ray.init(num_cpus=4, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """One MLflow store (sqlite:///mlruns.db + mlartifacts/) shared by the module's runs."""
    return tmp_path_factory.mktemp("train_runs")


@pytest.fixture
def in_workdir(workdir, monkeypatch) -> Path:
    monkeypatch.chdir(workdir)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return workdir


def _client(workdir: Path):
    from mlflow import MlflowClient

    return MlflowClient(f"sqlite:///{workdir / 'mlruns.db'}")


def _history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def _own_lines(output: str) -> list[str]:
    """The command's own lines: Ray forwards worker logs to the driver's (here captured)
    streams, prefixed with the process, e.g. "(RayTrainWorker pid=12) ..."."""
    ray_line = re.compile(r"^(\x1b\[\d+m)?\(\w+ pid=\d+")
    return [line for line in output.strip().splitlines() if not ray_line.match(line)]


def test_two_workers_log_metrics_and_register_a_model(local_ray, in_workdir, train_corpus, tiny):
    from chromaref.platform.models import ColorNet
    from chromaref.training.trainer import train

    schedule = {"lr": 1e-3, "warmup_steps": 2, "schedule": "cosine", "min_lr_ratio": 0.5}
    config = resolve_config(
        tiny,
        {
            "corpus": str(train_corpus),
            "workers": 2,
            "steps": 4,
            "checkpoint_every": 2,
            "optim": schedule,
        },
    )
    result = train(config)

    client = _client(in_workdir)
    run = client.get_run(result.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["workers"] == "2" and run.data.params["loss.chroma_weight"] == "1.0"
    assert [step for step, _ in _history(client, run.info.run_id, "train/loss")] == [1, 2, 3, 4]
    rates = [lr for _, lr in _history(client, run.info.run_id, "train/lr")]
    assert rates == pytest.approx([5e-4, 1e-3, 0.75e-3, 0.5e-3])  # warm-up, then cosine
    for key in ("train/chroma", "train/perceptual", "val/self/psnr", "val/other/ssim_ab"):
        assert _history(client, run.info.run_id, key), key
    assert 5 < result.metrics["val/self/psnr"] < 60
    gray_psnr = result.metrics["val/other/psnr"] - result.metrics["val/other/psnr_over_gray"]
    assert 5 < gray_psnr < 60 and gray_psnr != pytest.approx(result.metrics["val/other/psnr"])
    assert result.dataset["skipped"] == 2 and result.dataset["usable"] == 12
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "samples")}
    assert artifacts and all(path.endswith(".png") for path in artifacts)
    assert {a.path for a in client.list_artifacts(run.info.run_id, "config")} == {
        "config/train.yaml"
    }
    [version] = client.search_model_versions(f"run_id = '{run.info.run_id}'")
    assert version.name == "chromaref-colorizer" and str(version.version) == result.model_version
    assert float(version.tags["val/self/psnr"]) == pytest.approx(
        result.metrics["val/self/psnr"], rel=1e-3
    )
    assert version.tags["train_run"] == result.run_name and result.run_name.startswith("train-")
    model = ColorNet.from_file(result.model_file)  # the model file format, rebuilt from it
    assert model.meta.run_id == run.info.run_id
    assert model.meta.dataset["split_sha1"] == result.dataset["split_sha1"]
    gate = model.meta.calibration["chroma_gate"]  # fitted on the held-out photo at the end
    [(_, floor)] = _history(client, run.info.run_id, "calibration/floor")
    assert gate["floor"] == pytest.approx(floor) and _history(
        client, run.info.run_id, "calibration/psnr"
    )
    _colorize_with_registered_model(in_workdir, train_corpus, run.info.run_id, version.version)


def _colorize_with_registered_model(workdir: Path, corpus: Path, run_id: str, version: str):
    """`colorize --method trained --model` takes the file, runs:/ and models:/ URIs alike."""
    from chromaref.cli.main import app
    from chromaref.platform.color import lab_image
    from chromaref.platform.images import load_image

    photos = sorted(p for p in corpus.rglob("*.jpg") if p.stat().st_size > 1000)
    target, reference = photos[0], photos[1]
    for n, model in enumerate(
        (f"runs:/{run_id}/model", f"models:/chromaref-colorizer/{version}"), start=1
    ):
        out = workdir / f"colorized-{n}"
        args = ["colorize", str(target), "-r", str(reference), "--method", "trained"]
        result = CliRunner().invoke(app, [*args, "--model", model, "-q", "--out", str(out)])
        assert result.exit_code == 0, result.output
        [written] = out.glob(f"{target.stem}__ref-*.png")
        truth_l = lab_image(load_image(target).rgb)[..., 0]
        assert abs(lab_image(load_image(written).rgb)[..., 0] - truth_l).max() < 0.5
    missing = CliRunner().invoke(
        app, [*args, "--model", "models:/chromaref-colorizer/999", "--out", str(out)]
    )
    assert missing.exit_code == 2 and "models:/chromaref-colorizer/999" in missing.output
    _video_on_ray_with_registered_model(workdir, load_image(target).rgb, reference, run_id)


def _video_on_ray_with_registered_model(workdir: Path, photo, reference: Path, run_id: str):
    """`video --model runs:/... --address`: Ray tasks run in other folders, yet find the
    driver's MLflow store."""
    from clips import decode_all, pan_frames, write_clip

    from chromaref.cli.main import app

    clip = write_clip(workdir / "pan.mp4", pan_frames(photo, 4, (128, 96)))
    out = workdir / "video"
    args = ["video", str(clip), "-r", str(reference), "--model", f"runs:/{run_id}/model"]
    result = CliRunner().invoke(app, [*args, "--address", "local", "-q", "--out", str(out)])
    assert result.exit_code == 0, result.output
    [written] = out.glob("pan__ref-*.mp4")
    assert len(decode_all(written)[0]) == 4


def test_killed_worker_restarts_from_checkpoint_in_the_same_run(
    local_ray, in_workdir, train_corpus, tiny
):
    from chromaref.training.trainer import train

    settings = {"corpus": str(train_corpus), "workers": 2, "steps": 4, "checkpoint_every": 2}
    config = resolve_config(tiny, {**settings, "max_failures": 1, "debug.fail_at_step": 3})
    result = train(config)

    client = _client(in_workdir)
    assert client.get_run(result.mlflow_run_id).info.status == "FINISHED"
    runs = client.search_runs(
        [client.get_run(result.mlflow_run_id).info.experiment_id],
        filter_string=f"attributes.run_name = '{result.run_name}'",
    )
    assert [r.info.run_id for r in runs] == [result.mlflow_run_id]  # one run across attempts
    assert _history(client, result.mlflow_run_id, "train/resumed_from_step") == [(2, 2.0)]
    steps = [s for s, _ in _history(client, result.mlflow_run_id, "train/loss")]
    assert steps == [1, 2, 3, 4]  # rank 1 died in step 3; the restart began after step 2
    assert result.step == 4
    assert "PlacementGroupCleaner" not in _actor_classes()  # see trainer._trainer_class


def _actor_classes() -> set[str]:
    """The class of every actor this Ray instance has had, dead ones included."""
    import ray._private.state

    return {actor["ActorClassName"] for actor in ray._private.state.actors().values()}


def test_nan_loss_stops_with_one_line_then_resume_continues_the_same_run(
    local_ray, in_workdir, train_corpus, tiny
):
    import torch
    import yaml

    from chromaref.cli.main import app
    from chromaref.platform.models import ColorNet

    config = in_workdir / "nan.yaml"
    config.write_text(yaml.safe_dump({**tiny, "corpus": str(train_corpus), "name": "nan-run"}))
    runner = CliRunner()
    base = ["train", "--config", str(config), "--steps", "4", "--set", "checkpoint_every=2"]
    stopped = runner.invoke(app, [*base, "--set", "debug.nan_at_step=3", "--quiet"])
    assert stopped.exit_code == 2, stopped.output
    [line] = _own_lines(stopped.output)  # one line; nothing else but Ray's forwarded logs
    assert "loss became NaN/inf at step 3" in line and "--resume nan-run" in line
    run_dir = in_workdir / "chromaref-runs" / "nan-run"
    checkpoints = sorted(p.name for p in run_dir.glob("checkpoint_step_*"))
    assert checkpoints == ["checkpoint_step_0000002"]  # the last good one is kept

    client = _client(in_workdir)
    [run] = client.search_runs(
        [client.get_experiment_by_name("chromaref").experiment_id],
        filter_string="attributes.run_name = 'nan-run'",
    )
    assert run.info.status == "FAILED"

    resume = ["train", "--resume", "nan-run", "--set", "debug.nan_at_step=null", "--quiet"]
    resumed = runner.invoke(app, resume)  # the stored config, less the injected NaN
    assert resumed.exit_code == 0, resumed.output
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
    assert _history(client, run.info.run_id, "train/resumed_from_step") == [(2, 2.0)]
    assert max(s for s, _ in _history(client, run.info.run_id, "train/loss")) == 4
    assert _own_lines(resumed.output)[-1].endswith("colornet.pt")
    final = ColorNet.from_file(in_workdir / "chromaref-model" / "colornet.pt").state_dict()
    kept = torch.load(run_dir / checkpoints[0] / "checkpoint.pt", weights_only=True)["model"]
    assert any(not torch.equal(final[k], kept[k]) for k in kept)  # steps 3-4 trained it
    with pytest.raises(ConfigError, match="another model_options"):  # the network is fixed
        resume_config("nan-run", overrides={"model_options": {"width": 16}})


def test_init_fine_tunes_from_a_model_file_whose_architecture_wins(
    local_ray, in_workdir, train_corpus, tiny
):
    import torch

    from chromaref.platform.errors import WeightsError
    from chromaref.platform.models import ColorNet, get_backbone
    from chromaref.training.checkpoint import new_colornet
    from chromaref.training.trainer import train

    start_config = resolve_config(tiny, {"model_options": {**tiny["model_options"], "width": 16}})
    start = new_colornet(start_config, get_backbone(start_config.matching.backbone))
    start_file = start.save(in_workdir / "start.pt")
    run = {"corpus": str(train_corpus), "steps": 1, "name": "fine-tune", "optim": {"lr": 1e-6}}
    result = train(resolve_config(tiny, {**run, "init": str(start_file), "out": "ft-model"}))

    tuned = ColorNet.from_file(result.model_file)
    assert tuned.config == start.config  # width 16 from the file, not the config's 8
    before, after = start.state_dict(), tuned.state_dict()
    assert all(torch.allclose(before[k], after[k], atol=1e-4) for k in before)  # started there
    assert any(not torch.equal(before[k], after[k]) for k in before)  # and took a step
    params = _client(in_workdir).get_run(result.mlflow_run_id).data.params
    assert params["init"] == str(start_file)

    missing = resolve_config(tiny, {**run, "name": "no-init", "init": "missing.pt"})
    with pytest.raises(WeightsError, match=r"missing\.pt"):
        train(missing)
    assert not (in_workdir / "chromaref-runs" / "no-init").exists()
