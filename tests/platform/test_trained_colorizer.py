"""The `trained` colorizer through the real pipeline: a saved ColorNet on bundled photos."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from chromaref.platform.color import chroma, gray_image, image_to_tensor, rgb_to_lab
from chromaref.platform.config import MatchingConfig, PipelineConfig, TrainedConfig
from chromaref.platform.errors import WeightsError
from chromaref.platform.models import colornet_small
from chromaref.platform.pipeline import ColorizationPipeline


def _lab(rgb: np.ndarray) -> torch.Tensor:
    return rgb_to_lab(image_to_tensor(rgb))


def _config(model: str | None, backbone: str = "efficientnet_lite0") -> PipelineConfig:
    return PipelineConfig(
        colorizer="trained",
        matching=MatchingConfig(backbone=backbone),
        trained=TrainedConfig(model=model),
    )


@pytest.fixture(scope="module")
def random_model(tmp_path_factory) -> str:
    """A randomly initialised colornet_small saved as a trained run would save it."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("models") / "colornet_small.pt"
    colornet_small().save(path, run_id="random-init", matching=MatchingConfig().model_dump())
    return str(path)


def test_random_model_colorizes_a_real_pair_end_to_end_keeping_l_and_size(
    random_model, pipeline, photo_rgb
):
    truth, reference = photo_rgb("aloe_l"), photo_rgb("aloe_r")
    gray = gray_image(truth)
    pipe = ColorizationPipeline(_config(random_model), device="cpu")
    assert pipe.colorizer.net.meta.run_id == "random-init"
    [out] = pipe(gray, [reference])
    assert out.rgb.shape == truth.shape and out.rgb.dtype == np.uint8
    lab_out, lab_gray = _lab(out.rgb), _lab(gray)
    l_error = (lab_out[:, 0] - lab_gray[:, 0]).abs()
    assert float(l_error.max()) < 1.0 and float(l_error.mean()) < 0.2  # 8-bit rounding only
    assert float(chroma(lab_out).mean()) > 5.0  # the net's ab reached the output
    [training_free] = pipeline(gray, [reference])
    assert not np.array_equal(out.rgb, training_free.rgb)
    assert {"features", "correspondence", "colorize", "convert"} <= set(out.seconds)


def test_no_model_configured_says_how_to_get_one():
    with pytest.raises(WeightsError, match=r"none ships yet; train one with `chromaref train`"):
        ColorizationPipeline(_config(None), device="cpu")


def test_missing_model_file_is_named(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(
        WeightsError, match=rf"{re.escape(str(missing))}: model file not found; train one"
    ):
        ColorizationPipeline(_config(str(missing)), device="cpu")


def test_model_trained_on_another_backbone_is_refused(tmp_path):
    path = tmp_path / "vgg_trained.pt"
    colornet_small(feature_channels=1408).save(
        path, matching=MatchingConfig(backbone="vgg16_hed").model_dump()
    )
    with pytest.raises(WeightsError, match=r"trained on vgg16_hed features.*efficientnet_lite0"):
        ColorizationPipeline(_config(str(path)), device="cpu")
