"""The Lab contract against scikit-image on real photos, and the exact-L output path."""

from __future__ import annotations

import kornia.color
import numpy as np
import pytest
import torch
from skimage import data
from skimage.color import lab2rgb, rgb2lab

from chromaref.platform import color
from chromaref.platform.color import (
    chroma,
    gray_from_l,
    image_to_tensor,
    lab_to_rgb,
    lab_to_rgb_keep_l,
    lightness_from_luminance,
    rgb_to_lab,
    tensor_to_image,
)
from chromaref.platform.errors import ConfigError

PHOTOS = {"astronaut": data.astronaut, "chelsea": data.chelsea, "coffee": data.coffee}


@pytest.fixture(scope="module", params=sorted(PHOTOS))
def photo(request: pytest.FixtureRequest) -> np.ndarray:
    """A real photo bundled with scikit-image, (H, W, 3) uint8."""
    return PHOTOS[request.param]()


@pytest.fixture(scope="module")
def small_photo(photo: np.ndarray) -> np.ndarray:
    """The photo at half size, for the slower checks."""
    return np.ascontiguousarray(photo[::2, ::2])


def _crops(size: int = 96) -> torch.Tensor:
    """(3, 3, size, size): a top-left crop of each photo, as one batch."""
    return torch.cat([image_to_tensor(load()[:size, :size]) for load in PHOTOS.values()])


def _lab_of(rgb_uint8: np.ndarray) -> torch.Tensor:
    """scikit-image's Lab of a photo as a (1, 3, H, W) float32 tensor."""
    return torch.from_numpy(rgb2lab(rgb_uint8)).float().permute(2, 0, 1)[None]


def test_rgb_to_lab_matches_skimage(photo: np.ndarray) -> None:
    ours = rgb_to_lab(image_to_tensor(photo))[0].permute(1, 2, 0).numpy()
    error = np.abs(ours - rgb2lab(photo)).reshape(-1, 3).max(axis=0)
    assert (error < 0.5).all(), f"max |error| in L, a, b: {error}"


def test_lab_to_rgb_matches_skimage(photo: np.ndarray) -> None:
    lab = rgb2lab(photo)
    ours = lab_to_rgb(torch.from_numpy(lab).float().permute(2, 0, 1)[None])
    error = np.abs(ours[0].permute(1, 2, 0).numpy() - lab2rgb(lab)).max()
    assert error < 1 / 255


def test_batched_equals_one_at_a_time() -> None:
    rgb = _crops()
    lab = rgb_to_lab(rgb)
    ab = lab[:, 1:] * 3  # oversaturated: exercises the gamut search per image
    for i in range(rgb.shape[0]):
        one = slice(i, i + 1)
        torch.testing.assert_close(lab[one], rgb_to_lab(rgb[one]))
        torch.testing.assert_close(lab_to_rgb(lab)[one], lab_to_rgb(lab[one]))
        torch.testing.assert_close(
            lab_to_rgb_keep_l(lab[:, :1], ab)[one], lab_to_rgb_keep_l(lab[one, :1], ab[one])
        )


def test_conversions_are_differentiable() -> None:
    generator = torch.Generator().manual_seed(0)
    rgb = (0.1 + 0.8 * torch.rand(1, 3, 2, 3, generator=generator)).double().requires_grad_()
    assert torch.autograd.gradcheck(rgb_to_lab, (rgb,))
    lab = rgb_to_lab(rgb).detach().requires_grad_()
    assert torch.autograd.gradcheck(lambda x: lab_to_rgb(x, clip=False), (lab,))


def test_gray_from_l_inverts_the_l_of_every_gray_level() -> None:
    levels = torch.arange(256)
    for dtype, tolerance in ((torch.float32, 2e-6), (torch.float64, 1e-12)):
        gray = (levels.to(dtype) / 255).expand(1, 3, 1, 256)
        back = gray_from_l(rgb_to_lab(gray)[:, :1])
        assert (back - gray[:, :1]).abs().max() < tolerance
        assert torch.equal((back * 255).round().long().flatten(), levels)


def test_lightness_from_luminance_is_the_l_of_gray_pixels() -> None:
    """L of a gray pixel depends on its luminance alone, near black (the curve's linear
    segment) as elsewhere; for gray, linear RGB is the luminance."""
    y = torch.cat([torch.linspace(0, 0.02, 201), torch.linspace(0.02, 1, 981)]).double()
    gray = kornia.color.linear_rgb_to_rgb(y.expand(1, 3, 1, -1))
    torch.testing.assert_close(
        lightness_from_luminance(y), rgb_to_lab(gray)[0, 0, 0], atol=1e-9, rtol=0
    )


def test_keep_l_keeps_l_where_clipping_does_not(small_photo: np.ndarray) -> None:
    lab = rgb_to_lab(image_to_tensor(small_photo))
    l, ab = lab[:, :1], lab[:, 1:] * 3  # far outside the sRGB gamut in many pixels

    kept = lab_to_rgb_keep_l(l, ab)
    clipped = lab_to_rgb(torch.cat([l, ab], dim=1))

    assert kept.min() >= 0 and kept.max() <= 1
    assert (rgb_to_lab(kept)[:, :1] - l).abs().max() < 1e-3
    assert (rgb_to_lab(clipped)[:, :1] - l).abs().max() > 1.0  # clipping shifts lightness


def test_keep_l_only_shrinks_chroma_along_the_same_hue(small_photo: np.ndarray) -> None:
    lab = rgb_to_lab(image_to_tensor(small_photo))
    ab = lab[:, 1:] * 3
    out_ab = rgb_to_lab(lab_to_rgb_keep_l(lab[:, :1], ab))[:, 1:]
    assert (chroma(out_ab) <= chroma(ab) + 0.05).all()
    colorful = (chroma(out_ab) > 5).expand(-1, 2, -1, -1)
    cosine = torch.nn.functional.cosine_similarity(out_ab, ab, dim=1)[:, None]
    assert cosine.expand(-1, 2, -1, -1)[colorful].min() > 0.99


def test_keep_l_gives_a_photo_back_from_its_own_lab(small_photo: np.ndarray) -> None:
    """In-gamut colors convert as `lab_to_rgb` does; pixels on the gamut's surface (a channel
    at 0 or 255) may lose up to 2^-12 of their chroma to round-off, far below one 8-bit step."""
    lab = rgb_to_lab(image_to_tensor(small_photo))
    kept = lab_to_rgb_keep_l(lab[:, :1], lab[:, 1:])
    assert (kept - lab_to_rgb(lab)).abs().max() < 1e-3
    np.testing.assert_array_equal(tensor_to_image(kept), small_photo)


def test_keep_l_blocks_join_seamlessly(monkeypatch: pytest.MonkeyPatch) -> None:
    lab = rgb_to_lab(_crops())
    l, ab = lab[:, :1], lab[:, 1:] * 3
    whole = lab_to_rgb_keep_l(l, ab)
    monkeypatch.setattr(color, "BAND_PIXELS", 5000)  # 17-row blocks, a ragged last one
    torch.testing.assert_close(lab_to_rgb_keep_l(l, ab), whole)


def test_keep_l_rejects_mismatched_shapes() -> None:
    with pytest.raises(ConfigError):
        lab_to_rgb_keep_l(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 4, 5))


def test_chroma_of_lab_equals_chroma_of_ab(small_photo: np.ndarray) -> None:
    lab = _lab_of(small_photo)
    expected = np.hypot(lab[0, 1].numpy(), lab[0, 2].numpy())
    assert chroma(lab).shape == (1, 1, *lab.shape[-2:])
    torch.testing.assert_close(chroma(lab), chroma(lab[:, 1:]))
    np.testing.assert_allclose(chroma(lab)[0, 0].numpy(), expected, rtol=1e-5, atol=1e-4)


def test_uint8_round_trip_is_exact(photo: np.ndarray) -> None:
    every_value = np.arange(256, dtype=np.uint8).repeat(3).reshape(16, 16, 3)
    for image in (photo, every_value):
        tensor = image_to_tensor(image)
        assert tensor.shape == (1, 3, *image.shape[:2]) and tensor.dtype == torch.float32
        np.testing.assert_array_equal(tensor_to_image(tensor), image)


def test_image_to_tensor_rejects_non_rgb_uint8() -> None:
    with pytest.raises(ConfigError):
        image_to_tensor(np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(ConfigError):
        image_to_tensor(np.zeros((4, 4, 3), dtype=np.float32))


def test_uint8_output_path_in_bands_equals_the_float_path(
    small_photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lab_to_image_keep_l` (bands straight into uint8) gives the bytes of the float path,
    out-of-gamut pixels included, whatever the band size: at most one level apart where a
    float32 step of vectorised pow at a band's end tips a rounding."""
    lab = rgb_to_lab(image_to_tensor(small_photo))
    l, ab = lab[:, :1], lab[:, 1:] * 3  # many colors pushed out of gamut
    expected = tensor_to_image(lab_to_rgb_keep_l(l, ab)).astype(int)
    monkeypatch.setattr(color, "BAND_PIXELS", 7 * l.shape[-1] + 3)  # 7-row bands, ragged end
    difference = np.abs(color.lab_to_image_keep_l(l, ab) - expected)
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-4
    with pytest.raises(ConfigError, match="one image"):
        color.lab_to_image_keep_l(l.expand(2, -1, -1, -1), ab.expand(2, -1, -1, -1))


def test_gray_preview_in_bands_is_exact(
    small_photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gray_from_l and tensor_to_image of the expanded gray (the CLI's grid input) do not
    depend on the band size (beyond one float32 step where vectorised pow meets a band's
    end)."""
    l = rgb_to_lab(image_to_tensor(small_photo))[:, :1]
    gray = gray_from_l(l)
    image = tensor_to_image(gray.expand(-1, 3, -1, -1))
    monkeypatch.setattr(color, "BAND_PIXELS", 5 * l.shape[-1])
    torch.testing.assert_close(gray_from_l(l), gray, atol=2.5e-7, rtol=0)
    np.testing.assert_array_equal(tensor_to_image(gray.expand(-1, 3, -1, -1)), image)
    assert (image[..., 0] == image[..., 2]).all() and image.std() > 20  # gray, not flat
