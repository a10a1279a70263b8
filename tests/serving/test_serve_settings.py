"""Serving settings: the repository's Serve config file is valid for Ray Serve and for
`chromaref serve --config`, and bad settings are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chromaref.platform.errors import ConfigError
from chromaref.serving.app import _options, deployment_options
from chromaref.serving.config import Scaling, ServeConfig, load_serve_config

SERVE_YAML = Path(__file__).parents[2] / "configs" / "serve.yaml"


def test_the_repository_serve_config_is_valid_for_ray_serve_and_chromaref():
    from ray.serve.schema import ServeDeploySchema

    schema = ServeDeploySchema.model_validate(yaml.safe_load(SERVE_YAML.read_text()))
    application = schema.applications[0]
    assert application.import_path == "chromaref.serving.app:build"
    config = load_serve_config(SERVE_YAML)
    assert config == ServeConfig.model_validate(application.args)
    assert (config.colorizer.min_replicas, config.colorizer.max_replicas) == (1, 4)


def test_a_plain_settings_file_and_overrides(tmp_path):
    path = tmp_path / "serve.yaml"
    path.write_text("working_size: 192\ncolorizer:\n  max_replicas: 3\n")
    config = load_serve_config(path, {"colorizer.min_replicas": 2, "limits.max_top": 3})
    assert config.working_size == 192 and config.limits.max_top == 3
    assert (config.colorizer.min_replicas, config.colorizer.max_replicas) == (2, 3)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"colorizer.replicas": 2}, "unknown setting 'colorizer.replicas'"),
        ({"colorizer.min_replicas": 5}, "min_replicas 5 > max_replicas 1"),
        ({"limits.request_timeout_s": 0}, "limits.request_timeout_s"),
    ],
)
def test_bad_settings_are_one_line_errors(overrides, fragment):
    with pytest.raises(ConfigError, match="settings: ") as caught:
        load_serve_config(None, overrides)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_scaling_becomes_serve_options():
    fixed = _options(Scaling(min_replicas=2, max_replicas=2, num_cpus=1), gpus=0.0)
    assert fixed["num_replicas"] == 2 and "autoscaling_config" not in fixed
    scaled = _options(Scaling(min_replicas=1, max_replicas=3, upscale_delay_s=2), gpus=1.0)
    assert scaled["autoscaling_config"]["max_replicas"] == 3
    assert scaled["autoscaling_config"]["upscale_delay_s"] == 2
    assert scaled["ray_actor_options"] == {"num_cpus": 1.0, "num_gpus": 1.0}
    assert scaled["max_queued_requests"] == 32  # backpressure is on by default


def test_batching_lets_a_colorizer_accept_a_whole_batch():
    plain = deployment_options(ServeConfig())
    assert plain["Colorizer"]["max_ongoing_requests"] == 1
    batched = deployment_options(ServeConfig.model_validate({"batching": {"enabled": True}}))
    assert batched["Colorizer"]["max_ongoing_requests"] == 4
    assert batched["Gateway"]["ray_actor_options"] == {"num_cpus": 0.0, "num_gpus": 0.0}
