"""TrainConfig: YAML + overrides, and bad settings as one-line errors through the real CLI."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from chromaref.cli.main import app
from chromaref.platform.errors import ConfigError
from chromaref.platform.settings import parse_assignment, read_yaml
from chromaref.training.config import resolve_config, to_yaml


def test_yaml_then_command_line_overrides(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({"batch_size": 4, "loss": {"chroma_weight": 2.0}, "epochs": 3}))
    config = resolve_config(
        read_yaml(path),
        {"batch_size": 2, **dict([parse_assignment("loss.perceptual_weight=0.5")])},
    )
    assert config.batch_size == 2  # the command line wins
    assert config.loss.chroma_weight == 2.0 and config.epochs == 3  # the file's
    assert config.loss.perceptual_weight == 0.5  # --set, dotted
    assert config.loss.smoothness_weight == 0.05  # the default
    assert resolve_config(yaml.safe_load(to_yaml(config))) == config  # round trip


def test_the_example_config_is_valid():
    config = resolve_config(read_yaml("configs/train.yaml"), source="configs/train.yaml")
    assert config.model == "colornet_small" and config.tracking.registered_model


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"loss": {"bogus": 1}}, "unknown setting 'loss.bogus'"),
        ({"optim": {"lr": "fast"}}, "optim.lr: Input should be a valid number"),
        ({"model": "colornet_huge"}, "unknown model 'colornet_huge'"),
        ({"model_options": {"width": 6}}, "invalid ColorNet config"),
    ],
    ids=["unknown-key", "wrong-type", "unknown-model", "bad-model-option"],
)
def test_bad_settings_are_one_line_errors_with_exit_2(tmp_path, settings, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(settings))
    result = CliRunner().invoke(app, ["train", "--config", str(path), "--corpus", "nowhere"])
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"error: {path}: ") and expected in line


@pytest.mark.slow
def test_set_with_a_wrong_type_through_the_installed_command(tmp_path):
    # the real entry point, in a fresh process: fails before Ray or any worker starts
    result = subprocess.run(
        [str(Path(sys.executable).parent / "chromaref"), "train", "--set", "workers=two"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "workers: Input should be a valid integer" in line and "'two'" in line
    assert not (tmp_path / "mlruns.db").exists()


def test_bad_yaml_and_bad_assignment_are_config_errors(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("loss: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_yaml(path)
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        read_yaml(path)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_assignment("lr")


def test_a_missing_corpus_is_one_line_before_ray_starts(tmp_path):
    import ray

    result = CliRunner().invoke(app, ["train", "--corpus", str(tmp_path / "nowhere")])
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert "nowhere does not exist" in line
    assert not ray.is_initialized()
    missing = CliRunner().invoke(app, ["train", "--steps", "3"])
    assert missing.exit_code == 2 and "give --corpus" in missing.output


def test_a_model_uri_without_an_mlflow_store_is_one_line_and_creates_nothing(tmp_path, monkeypatch):
    from chromaref.platform.errors import WeightsError
    from chromaref.training.tracking import fetch_model_file

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(WeightsError, match="no MLflow store at sqlite:///"):
        fetch_model_file("models:/chromaref-colorizer/1", tmp_path / "dl")
    assert list(tmp_path.iterdir()) == []  # no empty mlruns.db left behind


def test_learning_rate_warms_up_then_follows_the_schedule():
    from chromaref.training.config import OptimConfig

    constant = OptimConfig(lr=1e-3, warmup_steps=4)
    assert [constant.lr_at(s, 100) for s in (1, 2, 4, 5, 100)] == pytest.approx(
        [2.5e-4, 5e-4, 1e-3, 1e-3, 1e-3]
    )
    cosine = OptimConfig(lr=1e-3, warmup_steps=10, schedule="cosine", min_lr_ratio=0.1)
    rates = [cosine.lr_at(s, 110) for s in range(1, 111)]
    assert rates[9] == pytest.approx(1e-3)  # the peak, at the end of the warm-up
    assert rates[59] == pytest.approx(0.55e-3)  # half-way down: the mean of peak and floor
    assert rates[-1] == pytest.approx(1e-4)  # the floor, at the last step
    assert all(a >= b for a, b in itertools.pairwise(rates[9:]))
    assert cosine.lr_at(500, 110) == pytest.approx(1e-4)  # past the end it stays there
