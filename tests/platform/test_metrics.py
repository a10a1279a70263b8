"""Quality metrics: what each one is blind to and what it sees."""

from __future__ import annotations

import numpy as np
import pytest

from chromaref.platform.assets import photo
from chromaref.platform.color import lab_image
from chromaref.platform.images import load_image
from chromaref.platform.metrics import ab_histogram_distance, ab_psnr, ab_ssim, colorfulness


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return load_image(photo("chelsea").path).rgb


def test_ab_metrics_see_chroma_and_ignore_luminance(rgb):
    lab = lab_image(rgb)
    brighter = lab.copy()
    brighter[..., 0] = np.clip(brighter[..., 0] + 10, 0, 100)  # same chroma, other L
    assert ab_ssim(brighter, lab) == 1.0
    with np.errstate(divide="ignore"):  # zero error: infinite PSNR
        assert ab_psnr(brighter, lab) == np.inf
    shifted = lab.copy()
    shifted[..., 1] += 12.0  # redder everywhere
    noisy = lab.copy()
    noisy[..., 1:] += np.random.default_rng(0).normal(0, 12, lab[..., 1:].shape)
    assert ab_ssim(noisy, lab) < ab_ssim(shifted, lab) < 1.0  # noise breaks the structure
    assert ab_histogram_distance(lab, lab) == 0.0 < ab_histogram_distance(shifted, lab)


def test_colorfulness_is_zero_for_gray_and_grows_with_saturation(rgb):
    gray = np.repeat(rgb.mean(axis=-1, keepdims=True), 3, axis=-1).astype(np.uint8)
    assert colorfulness(gray) == 0.0
    washed = ((rgb.astype(np.float32) + gray) / 2).astype(np.uint8)
    assert 0.0 < colorfulness(washed) < colorfulness(rgb)
