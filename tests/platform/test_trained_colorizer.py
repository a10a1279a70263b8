"""The `trained` colorizer through the real pipeline: a saved ColorNet on bundled photos."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from chromaref.platform.color import gray_image, image_to_tensor, rgb_to_lab
from chromaref.platform.colorizers.chroma_gate import ChromaGate, match_strength
from chromaref.platform.config import MatchingConfig, PipelineConfig, TrainedConfig
from chromaref.platform.errors import WeightsError
from chromaref.platform.models import colornet_small
from chromaref.platform.models.colornet import SHIPPED_MODEL
from chromaref.platform.pipeline import ColorizationPipeline


def _lab(rgb: np.ndarray) -> torch.Tensor:
    return rgb_to_lab(image_to_tensor(rgb))


def _config(model: str | None, backbone: str = "efficientnet_lite0") -> PipelineConfig:
    return PipelineConfig(
        colorizer="trained",
        matching=MatchingConfig(backbone=backbone),
        trained=TrainedConfig(model=model),
    )


# The output bias of the saved model: an untrained net predicts about this ab everywhere.
BIAS_AB = (15.0, 25.0)


@pytest.fixture(scope="module")
def random_model(tmp_path_factory) -> str:
    """A randomly initialised plain (not residual) colornet_small whose output bias is set to
    BIAS_AB, saved as a trained run would save it; the bias makes its prediction
    recognisable in the result."""
    torch.manual_seed(1)
    net = colornet_small(residual=False)
    with torch.no_grad():
        net.head[-1].bias.copy_(torch.atanh(torch.tensor(BIAS_AB) / net.config.ab_scale))
    path = tmp_path_factory.mktemp("models") / "colornet_small.pt"
    net.save(path, run_id="random-init", matching=MatchingConfig().model_dump())
    return str(path)


@pytest.mark.slow
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
    median_ab = lab_out[0, 1:].flatten(1).median(dim=1).values
    torch.testing.assert_close(median_ab, torch.tensor(BIAS_AB), atol=2.0, rtol=0)
    training_free_pipeline = ColorizationPipeline(
        PipelineConfig(colorizer="training-free"), device="cpu"
    )
    [training_free] = training_free_pipeline(gray, [reference])
    assert not np.array_equal(out.rgb, training_free.rgb)
    assert {"features", "correspondence", "colorize", "convert"} <= set(out.seconds)


@pytest.mark.slow
def test_an_untrained_residual_model_colorizes_as_the_training_free_colorizer(tmp_path, photo_rgb):
    """A residual ColorNet starts from the training-free grid ab: untrained (a near-zero
    correction) its result is the training-free result, so training only adds to it."""
    torch.manual_seed(0)
    path = tmp_path / "residual.pt"
    colornet_small().save(path, matching=MatchingConfig().model_dump())
    gray, reference = gray_image(photo_rgb("aloe_l")), photo_rgb("aloe_r")
    [trained] = ColorizationPipeline(_config(str(path)), device="cpu")(gray, [reference])
    training_free_pipeline = ColorizationPipeline(
        PipelineConfig(colorizer="training-free"), device="cpu"
    )
    [training_free] = training_free_pipeline(gray, [reference])
    ab_trained, ab_free = _lab(trained.rgb)[:, 1:], _lab(training_free.rgb)[:, 1:]
    assert float(ab_free.abs().mean()) > 5  # a colorful result, not two grays compared
    assert float((ab_trained - ab_free).abs().mean()) < 0.5


def test_without_a_model_file_the_shipped_model_is_used():
    pipe = ColorizationPipeline(_config(None), device="cpu")
    meta = pipe.colorizer.net.meta
    assert meta.path == str(SHIPPED_MODEL) and meta.dtype == "float16"
    assert meta.config["residual"] and meta.run_id and meta.dataset["split_sha1"]
    assert meta.matching["backbone"] == "efficientnet_lite0"
    assert SHIPPED_MODEL.stat().st_size < 4e6  # a few MB in the wheel


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


def test_other_matching_settings_work_with_a_warning(tmp_path, caplog):
    path = tmp_path / "stride8.pt"
    trained_with = MatchingConfig(grid_stride=8, level_weights=(1.0, 1.0, 2.0, 2.0))
    colornet_small().save(path, matching=trained_with.model_dump())
    with caplog.at_level("WARNING"):
        ColorizationPipeline(_config(str(path)), device="cpu")
    assert "grid_stride" in caplog.text and "level_weights" in caplog.text
    caplog.clear()
    same = tmp_path / "same.pt"
    colornet_small().save(same, matching=MatchingConfig(max_chunk_elements=1 << 12).model_dump())
    with caplog.at_level("WARNING"):
        ColorizationPipeline(_config(str(same)), device="cpu")
    assert "differ" not in caplog.text


@pytest.mark.slow
def test_the_files_chroma_gate_scales_the_chroma_by_the_match_strength(tmp_path, photo_rgb):
    torch.manual_seed(1)
    net = colornet_small(residual=False)
    with torch.no_grad():  # the same ab everywhere, as random_model predicts
        net.head[-1].bias.copy_(torch.atanh(torch.tensor(BIAS_AB) / net.config.ab_scale))
    gate = ChromaGate(floor=0.5, knee=1.0)
    matching = MatchingConfig().model_dump()
    path = str(
        net.save(tmp_path / "gated.pt", matching=matching, calibration=gate.as_calibration())
    )
    target, reference = gray_image(photo_rgb("aloe_l")), photo_rgb("aloe_r")
    gated = ColorizationPipeline(_config(path), device="cpu")
    assert gated.colorizer.gate == gate
    raw = ColorizationPipeline(
        PipelineConfig(colorizer="trained", trained=TrainedConfig(model=path, calibrated=False)),
        device="cpu",
    )
    match = gated.correspond(gated.prepare(target), gated.prepare(reference))
    strength = float(match_strength(match.similarity, gated.config.propagation)[0])
    assert 0.0 < strength < 1.0

    def mean_ab(pipe: ColorizationPipeline) -> torch.Tensor:
        return _lab(pipe(target, [reference])[0].rgb)[0, 1:].mean(dim=(1, 2))

    ratio = (mean_ab(gated) / mean_ab(raw)).tolist()
    assert ratio == pytest.approx([0.5 + 0.5 * strength] * 2, abs=0.03)


def test_a_model_file_with_an_impossible_gate_is_refused_naming_it(tmp_path):
    path = tmp_path / "bad_gate.pt"
    colornet_small().save(path, calibration={"chroma_gate": {"floor": 3.0}})
    with pytest.raises(WeightsError, match=re.escape(str(path))):
        ColorizationPipeline(_config(str(path)), device="cpu")
