"""End to end on real photos: one result per reference, input size and exact L kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chromaref.platform.assets import photo
from chromaref.platform.color import gray_image, image_to_tensor, rgb_to_lab
from chromaref.platform.config import PipelineConfig
from chromaref.platform.errors import ConfigError, UnusableReferenceError
from chromaref.platform.metrics import psnr
from chromaref.platform.pipeline import ColorizationPipeline, working_shape


def _l(rgb: np.ndarray) -> torch.Tensor:
    return rgb_to_lab(image_to_tensor(rgb))[0, 0]


def test_same_scene_reference_beats_gray_and_keeps_l(pipeline, photo_rgb):
    truth, reference = photo_rgb("aloe_l"), photo_rgb("aloe_r")
    gray = gray_image(truth)
    [out] = pipeline(gray, [reference])
    assert out.rgb.shape == truth.shape and out.rgb.dtype == np.uint8
    assert psnr(out.rgb, truth) > psnr(gray, truth) + 4.0
    l_error = (_l(out.rgb) - _l(gray)).abs()
    assert float(l_error.max()) < 1.0 and float(l_error.mean()) < 0.2  # 8-bit rounding only
    assert set(out.seconds) >= {"features", "correspondence", "colorize", "convert"}


@pytest.mark.slow
def test_one_result_per_reference_in_order(pipeline, photo_rgb):
    """Each result is named after, and made from, the reference at its position."""
    gray = gray_image(photo_rgb("leuven_a"))
    names = ["aloe_r", "baboon"]
    outs = pipeline(gray, [photo(name).path for name in names])
    swapped = pipeline(gray, [photo(name).path for name in reversed(names)])
    assert [o.reference for o in outs] == names
    assert [o.reference for o in swapped] == names[::-1]
    assert not np.array_equal(outs[0].rgb, outs[1].rgb)
    for out, same in zip(outs, reversed(swapped), strict=True):
        np.testing.assert_array_equal(out.rgb, same.rgb)


def test_unrelated_reference_does_no_harm(pipeline, photo_rgb):
    truth = photo_rgb("orange")
    gray = gray_image(truth)
    [out] = pipeline(gray, [photo_rgb("baboon")])
    assert psnr(out.rgb, truth) > psnr(gray, truth) - 1.0


def test_gray_reference_is_refused_with_a_clear_message(pipeline, photo_rgb):
    gray_reference = gray_image(photo_rgb("chelsea"))
    with pytest.raises(UnusableReferenceError, match="no color"):
        pipeline(gray_image(photo_rgb("coffee")), [gray_reference])


def test_very_different_sizes_and_aspect_ratios(pipeline, photo_rgb):
    from PIL import Image

    wide = np.asarray(Image.fromarray(photo_rgb("china")).resize((700, 90)))
    tall = np.asarray(Image.fromarray(photo_rgb("flower")).resize((64, 300)))
    tiny = np.asarray(Image.fromarray(photo_rgb("coffee")).resize((9, 8)))
    for target, reference in ((wide, tall), (tall, wide), (tiny, wide), (wide, tiny)):
        [out] = pipeline(gray_image(target), [reference])
        assert out.rgb.shape == target.shape


def test_bad_arguments_are_config_errors(pipeline, photo_rgb):
    with pytest.raises(ConfigError, match="at least one reference"):
        pipeline(photo_rgb("coffee"), [])
    with pytest.raises(ConfigError, match="uint8"):
        pipeline(np.zeros((10, 10, 3), np.float32), [photo_rgb("coffee")])
    with pytest.raises(ConfigError, match="aspect ratio"):
        working_shape(10, 4000, 256)
    with pytest.raises(ConfigError, match="unknown colorizer"):
        ColorizationPipeline(PipelineConfig(colorizer="magic"))


@pytest.mark.parametrize("method", ["reinhard", "welsh"])
def test_baseline_methods_run_through_the_same_pipeline(method, photo_rgb):
    pipe = ColorizationPipeline(PipelineConfig(colorizer=method))
    assert pipe.backbone is None  # baselines need no features
    truth = photo_rgb("aloe_l")
    [out] = pipe(gray_image(truth), [photo_rgb("aloe_r")])
    assert out.rgb.shape == truth.shape
    assert float((_l(out.rgb) - _l(truth)).abs().max()) < 1.0


@pytest.mark.slow
def test_bands_change_no_result(pipeline, photo_rgb, monkeypatch):
    """Full-resolution work in bands of a few rows (as on a 100 MP photo) gives the result of
    doing it at once: L and the working copy within float noise, output within one level."""
    from chromaref.platform import color

    target, reference = gray_image(photo_rgb("aloe_l")), photo_rgb("aloe_r")
    lab = rgb_to_lab(image_to_tensor(target))
    size = working_shape(*target.shape[:2], pipeline.config.matching.working_size)
    work = torch.nn.functional.interpolate(lab, size=size, mode="bilinear", antialias=True)
    monkeypatch.setattr(color, "BAND_PIXELS", target.size)  # one band: nothing is banded
    [whole] = pipeline(target, [reference])
    monkeypatch.setattr(color, "BAND_PIXELS", 5 * target.shape[1] + 7)  # 5-row bands
    prepared = pipeline.prepare(target)
    torch.testing.assert_close(prepared.l_full, lab[:, :1], atol=1e-4, rtol=0)
    torch.testing.assert_close(prepared.lab_work, work, atol=1e-4, rtol=0)
    [banded] = pipeline(target, [reference])
    assert np.abs(banded.rgb.astype(int) - whole.rgb).max() <= 1
    assert psnr(banded.rgb, target) < 40  # colorized: not the gray input back


def test_prepare_many_shares_one_backbone_pass_per_shape_and_matches_prepare(
    pipeline, photo_rgb, monkeypatch
):
    """A served batch: same-shape images go through the backbone together, others alone; each
    prepared image equals `prepare`'s up to float rounding, in the order given."""
    images = [photo_rgb("chelsea"), photo_rgb("coffee"), photo_rgb("chelsea")[::-1].copy()]
    expected = [pipeline.prepare(image) for image in images]
    batches = []
    backbone = pipeline.backbone
    monkeypatch.setattr(pipeline, "backbone", lambda l: batches.append(len(l)) or backbone(l))
    prepared = pipeline.prepare_many(images, names=["a", "b", "c"])
    shapes = {tuple(p.lab_work.shape) for p in expected}
    assert sorted(batches) == sorted(
        sum(tuple(p.lab_work.shape) == shape for p in expected) for shape in shapes
    )
    assert [p.name for p in prepared] == ["a", "b", "c"]
    for got, want in zip(prepared, expected, strict=True):
        torch.testing.assert_close(got.l_full, want.l_full)
        torch.testing.assert_close(got.grid.combined, want.grid.combined, atol=1e-4, rtol=0)


def test_a_small_photo_is_matched_at_the_working_size_and_keeps_its_colors(pipeline, photo_rgb):
    """Matched at its own 64 px, a thumbnail came out nearly gray even from its own photo;
    scaled up to the working size, the backbone sees it at the reference's scale."""
    from PIL import Image

    gains = []
    for name in ("coffee", "astronaut"):
        full = photo_rgb(name)
        small = Image.fromarray(full)
        small.thumbnail((64, 64), Image.LANCZOS)
        truth = np.asarray(small)
        [out] = pipeline(gray_image(truth), [full[:, ::-1]])  # mirrored: a negative-stride view
        assert out.rgb.shape == truth.shape
        gains.append(psnr(out.rgb, truth) - psnr(gray_image(truth), truth))
    assert min(gains) > 4.0, gains
