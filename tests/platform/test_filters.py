"""Edge-aware propagation and guided upsampling do what the colorizer relies on."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.filters import box_blur

from chromaref.platform import color
from chromaref.platform.color import image_to_tensor, rgb_to_lab
from chromaref.platform.filters import guided_upsample, weighted_least_squares


def _two_regions(h: int = 24, w: int = 32) -> torch.Tensor:
    """Luminance with a strong vertical edge: dark left half, bright right half."""
    guide = torch.full((1, 1, h, w), 20.0)
    guide[..., w // 2 :] = 80.0
    return guide


def test_wls_keeps_confident_values_and_applies_gray_prior():
    data = torch.randn(1, 2, 8, 8) * 20
    out = weighted_least_squares(
        data, torch.ones(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), smoothness=0.0, sigma=5, prior=0.25
    )
    torch.testing.assert_close(out, data / 1.25)


def test_wls_fills_holes_within_a_region_but_not_across_an_edge():
    guide = _two_regions()
    data = torch.zeros(1, 2, 24, 32)
    data[:, 0, :, :16] = 30.0  # left region colored a=+30
    data[:, 0, :, 16:] = -30.0  # right region a=-30
    confidence = torch.ones(1, 1, 24, 32)
    confidence[..., 4:20, 4:28] = 0.0  # a hole straddling the edge
    out = weighted_least_squares(
        data, confidence, guide, smoothness=5.0, sigma=5.0, prior=0.001, iterations=400
    )
    hole_left = out[0, 0, 8:16, 6:14]
    hole_right = out[0, 0, 8:16, 18:26]
    assert hole_left.min() > 20.0, "left hole must be filled from its own region"
    assert hole_right.max() < -20.0, "right hole must not take the left region's color"


def test_wls_fades_to_gray_without_confident_cells():
    data = torch.full((1, 2, 16, 16), 40.0)
    out = weighted_least_squares(
        data,
        torch.full((1, 1, 16, 16), 0.01),
        torch.zeros(1, 1, 16, 16),
        smoothness=1.0,
        sigma=5.0,
        prior=0.05,
    )
    assert out.abs().max() < 10.0


def test_guided_upsample_follows_full_resolution_edges():
    guide_high = _two_regions(96, 128)
    guide_low = torch.nn.functional.interpolate(guide_high, size=(24, 32), mode="area")
    source = torch.where(guide_low > 50, torch.tensor(-30.0), torch.tensor(30.0)).repeat(1, 2, 1, 1)
    out = guided_upsample(source, guide_low, guide_high, radius=2, eps=1.0)
    assert out.shape == (1, 2, 96, 128)
    # Right next to the edge, full-resolution pixels take their own side's chroma.
    assert out[0, 0, :, 62].mean() > 20.0 and out[0, 0, :, 65].mean() < -20.0


def test_guided_upsample_preserves_constant_chroma():
    guide_high = torch.rand(1, 1, 40, 60) * 100
    guide_low = torch.nn.functional.interpolate(guide_high, size=(10, 15), mode="area")
    out = guided_upsample(torch.full((1, 2, 10, 15), 7.0), guide_low, guide_high, radius=2, eps=4.0)
    torch.testing.assert_close(out, torch.full_like(out, 7.0), atol=1e-3, rtol=0)


def _guided_upsample_at_once(source, guide_low, guide_high, *, radius, eps):
    """The unbanded fast guided filter: (a, b) upsampled to full resolution in one resize."""
    k = 2 * radius + 1

    def blur(x):
        return box_blur(x, k, border_type="replicate")

    mean_i, mean_p = blur(guide_low), blur(source)
    a = (blur(guide_low * source) - mean_i * mean_p) / (blur(guide_low**2) - mean_i**2 + eps)
    b = mean_p - a * mean_i
    size = guide_high.shape[-2:]
    a, b = (F.interpolate(blur(x), size=size, mode="bilinear") for x in (a, b))
    return a * guide_high + b


def test_guided_upsample_in_bands_equals_one_full_resolution_resize(monkeypatch, photo_rgb):
    """Bands of a few rows give the result of one full-size bilinear resize of (a, b), on a
    real photo's L and a chroma map with real edges (its own ab, blurred to the low size)."""
    lab = rgb_to_lab(image_to_tensor(photo_rgb("leuven_a")))
    guide_high = lab[:, :1]
    low = (37, 49)  # a ragged ratio: source rows fall between output rows
    guide_low = F.interpolate(guide_high, size=low, mode="bilinear", antialias=True)
    source = F.interpolate(lab[:, 1:], size=low, mode="bilinear", antialias=True)
    expected = _guided_upsample_at_once(source, guide_low, guide_high, radius=2, eps=4.0)
    whole = guided_upsample(source, guide_low, guide_high, radius=2, eps=4.0)
    monkeypatch.setattr(color, "BAND_PIXELS", 3 * guide_high.shape[-1] + 5)  # 3-row bands
    banded = guided_upsample(source, guide_low, guide_high, radius=2, eps=4.0)
    assert torch.equal(banded, whole)  # band size never changes a value
    assert expected.abs().max() > 10.0  # real chroma, not a flat map
    torch.testing.assert_close(banded, expected, atol=1e-4, rtol=0)
