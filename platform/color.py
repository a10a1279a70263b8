"""The Lab contract, owned once: sRGB <-> CIELAB (D65) in torch, and the exact-L output path.

Models take L and emit ab; every result is assembled here from the input's own L, so what a
user gets back always has the luminance they put in. Conversions are kornia's (checked against
scikit-image in the tests: max error < 1e-4 in L, a, b on real photos), batched and
differentiable, on (B, 3, H, W) float tensors with RGB in [0, 1], L in [0, 100] and a, b in raw
CIELAB units.

Full-resolution work runs in bands of rows (`band_rows`), so a 100 MP photo never has a
full-size float temporary beyond the maps the caller asked for.
"""

from __future__ import annotations

import kornia.color
import numpy as np
import torch
from PIL import Image
from torch import Tensor

from chromaref.platform.errors import ConfigError

# CIELAB constants, the same as kornia's and scikit-image's (D65 white, 2° observer).
_D65_WHITE = (0.95047, 1.0, 1.08883)
_F_CUBE_ABOVE = 6.0 / 29.0  # f^-1(f) = f^3 above this, the linear segment below
_F_LINEAR_BELOW = 0.008856  # f(t) = t^(1/3) above this, the linear segment below
_F_SLOPE = 7.787
_F_OFFSET = 4.0 / 29.0
_XYZ_TO_LINEAR_RGB = (
    (3.2404813432005266, -1.5371515162713185, -0.4985363261688878),
    (-0.9692549499965682, 1.8759900014898907, 0.0415559265582928),
    (0.0556466391351772, -0.2040413383665112, 1.0573110696453443),
)
_SRGB_LINEAR_ABOVE = 0.0031308  # sRGB transfer curve: 12.92 * x below, the power law above

# Pixels processed at once by full-resolution conversions, so their temporaries stay at a
# few MB whatever the image size; also used by the pipeline and the filters.
BAND_PIXELS = 1 << 19


def band_rows(width: int, batch: int = 1) -> int:
    """Rows per band for an image `width` pixels wide: about `BAND_PIXELS` pixels a band."""
    return max(1, BAND_PIXELS // max(1, batch * width))


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """(B, 3, H, W) sRGB in [0, 1] -> CIELAB (D65)."""
    return kornia.color.rgb_to_lab(rgb)


def lab_to_rgb(lab: Tensor, *, clip: bool = True) -> Tensor:
    """(B, 3, H, W) CIELAB -> sRGB, clipped to [0, 1] unless `clip=False`."""
    return kornia.color.lab_to_rgb(lab, clip=clip)


def lightness_from_luminance(y: Tensor) -> Tensor:
    """CIE luminance Y in [0, 1] (D65 white = 1) -> CIELAB L in [0, 100]: L depends on Y alone,
    so a gray image needs no round trip through sRGB (the same curve as `rgb_to_lab`)."""
    f = torch.where(
        y > _F_LINEAR_BELOW, y.clamp_min(_F_LINEAR_BELOW) ** (1.0 / 3.0), _F_SLOPE * y + _F_OFFSET
    )
    return (116.0 * f - 16.0).clamp_(0.0, 100.0)


def _f_inverse(f: Tensor) -> Tensor:
    """Inverse of CIELAB's companding f(t): t = f^3, or the linear segment near black."""
    return torch.where(f > _F_CUBE_ABOVE, f**3, (f - _F_OFFSET) / _F_SLOPE)


def _gray_rows(l: Tensor) -> Tensor:
    y = _f_inverse((l + 16.0) / 116.0).clamp(0.0, 1.0)
    power = 1.055 * y.clamp_min(_SRGB_LINEAR_ABOVE) ** (1.0 / 2.4) - 0.055
    return torch.where(y > _SRGB_LINEAR_ABOVE, power, 12.92 * y)


def gray_from_l(l: Tensor) -> Tensor:
    """(B, 1, H, W) L -> the sRGB value in [0, 1] of the neutral gray with that lightness.

    Exact inverse of the L that `rgb_to_lab` gives a gray pixel (R = G = B): for gray, linear
    RGB equals the luminance Y, so only the L and sRGB curves are inverted. Computed in bands
    of rows: the result is the only full-size tensor.
    """
    gray = torch.empty_like(l)
    rows = band_rows(l.shape[-1], l.shape[0])
    for top in range(0, l.shape[-2], rows):
        gray[..., top : top + rows, :] = _gray_rows(l[..., top : top + rows, :])
    return gray


def _xyz_white_to_linear_rgb(like: Tensor) -> Tensor:
    """(3, 3) white-relative XYZ -> linear RGB matrix (D65 white folded in), like `like`."""
    matrix = torch.tensor(_XYZ_TO_LINEAR_RGB, dtype=like.dtype, device=like.device)
    return matrix * torch.tensor(_D65_WHITE, dtype=like.dtype, device=like.device)


def _lab_to_linear_rgb(lab: Tensor) -> Tensor:
    """(3, N) CIELAB -> (3, N) unclipped linear RGB (kornia's formulas, without its clamps)."""
    l, a, b = lab
    fy = (l + 16.0) / 116.0
    f = torch.stack([fy + a / 500.0, fy, fy - b / 200.0])
    return _xyz_white_to_linear_rgb(lab) @ _f_inverse(f)


def _in_gamut(linear_rgb: Tensor) -> Tensor:
    """(3, N) linear RGB -> (N,) True where all three channels lie in [0, 1]."""
    return ((linear_rgb >= 0.0) & (linear_rgb <= 1.0)).all(dim=0)


def _largest_in_gamut_scale(lab: Tensor, iterations: int) -> Tensor:
    """(3, N) Lab -> (N,) largest s in [0, 1] found by bisection with (L, s a, s b) in gamut.

    All pixels step at once; s = 0 (the neutral axis) is the fallback that always fits. Y
    depends on L alone, so each step recomputes only X and Z.
    """
    matrix = _xyz_white_to_linear_rgb(lab)
    fy = (lab[0] + 16.0) / 116.0
    from_y = matrix[:, 1:2] * _f_inverse(fy)  # (3, N)
    xz_step = torch.stack([lab[1] / 500.0, lab[2] / -200.0])  # d(fx, fz) / ds
    low = torch.zeros_like(fy)
    step = 0.5
    for _ in range(iterations):
        candidate = low + step
        linear = torch.addmm(from_y, matrix[:, 0::2], _f_inverse(fy + candidate * xz_step))
        low = torch.where(_in_gamut(linear), candidate, low)
        step /= 2
    return low


def _keep_l_linear(lab: Tensor, iterations: int) -> Tensor:
    """(3, N) Lab -> (3, N) linear RGB in gamut, out-of-gamut colors desaturated at their L."""
    linear = _lab_to_linear_rgb(lab)
    outside = ~_in_gamut(linear)
    if outside.any():
        lab_out = lab[:, outside]
        scale = _largest_in_gamut_scale(lab_out, iterations)
        linear[:, outside] = _lab_to_linear_rgb(torch.cat([lab_out[:1], lab_out[1:] * scale]))
    return linear


def _check_keep_l(l: Tensor, ab: Tensor) -> None:
    if l.ndim != 4 or l.shape[1] != 1 or ab.shape != (l.shape[0], 2, *l.shape[2:]):
        raise ConfigError(
            f"lab_to_rgb_keep_l needs l (B, 1, H, W) and ab (B, 2, H, W); got "
            f"{tuple(l.shape)} and {tuple(ab.shape)}"
        )


def _keep_l_rows(l: Tensor, ab: Tensor, iterations: int) -> Tensor:
    """`lab_to_rgb_keep_l` of a band of rows; only its out-of-gamut pixels are revisited."""
    batch, width = l.shape[0], l.shape[-1]
    lab = torch.cat([l, ab], dim=1)
    linear = _keep_l_linear(lab.transpose(0, 1).reshape(3, -1), iterations)
    linear = linear.reshape(3, batch, -1, width).transpose(0, 1)
    return kornia.color.linear_rgb_to_rgb(linear).clamp(0.0, 1.0)


def lab_to_rgb_keep_l(l: Tensor, ab: Tensor, *, iterations: int = 12) -> Tensor:
    """sRGB in [0, 1] of (l, ab) with the exact L kept: out-of-gamut colors lose chroma.

    Plain clipping of out-of-gamut RGB changes L. Here each such pixel's ab is scaled by the
    largest s in [0, 1] found by `iterations` bisection steps (resolution 2^-iterations) that
    lands inside the sRGB gamut; the neutral axis (s = 0) always does. In-gamut pixels convert
    as `lab_to_rgb` does. Rows are converted in bands, so memory stays near the size of the
    output.
    """
    _check_keep_l(l, ab)
    rgb = torch.empty((l.shape[0], 3, *l.shape[2:]), dtype=ab.dtype, device=ab.device)
    rows = band_rows(l.shape[-1], l.shape[0])
    for top in range(0, l.shape[-2], rows):
        band = slice(top, top + rows)
        rgb[..., band, :] = _keep_l_rows(l[..., band, :], ab[..., band, :], iterations)
    return rgb


def lab_to_image_keep_l(l: Tensor, ab: Tensor, *, iterations: int = 12) -> np.ndarray:
    """`tensor_to_image(lab_to_rgb_keep_l(l, ab))` for one (1, 1, H, W) L and (1, 2, H, W) ab,
    band by band straight into the (H, W, 3) uint8 result, which is the only full-size
    allocation: the pipeline's output path for images of any size."""
    _check_keep_l(l, ab)
    if l.shape[0] != 1:
        raise ConfigError(f"lab_to_image_keep_l converts one image, got a batch of {l.shape[0]}")
    image = np.empty((*l.shape[2:], 3), dtype=np.uint8)
    rows = band_rows(l.shape[-1])
    for top in range(0, l.shape[-2], rows):
        band = slice(top, top + rows)
        _to_uint8(_keep_l_rows(l[..., band, :], ab[..., band, :], iterations), image[band])
    return image


def chroma(lab_or_ab: Tensor) -> Tensor:
    """sqrt(a^2 + b^2) as (B, 1, H, W), from a Lab or an ab tensor (zero gradient at gray)."""
    return torch.linalg.vector_norm(lab_or_ab[:, -2:], dim=1, keepdim=True)


def image_to_tensor(rgb_uint8: np.ndarray) -> Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in [0, 1]."""
    if rgb_uint8.dtype != np.uint8 or rgb_uint8.ndim != 3 or rgb_uint8.shape[2] != 3:
        raise ConfigError(
            f"expected an (H, W, 3) uint8 RGB array, got {rgb_uint8.shape} {rgb_uint8.dtype}"
        )
    channels = torch.from_numpy(rgb_uint8.copy()).permute(2, 0, 1).contiguous()  # any strides
    return channels[None].to(torch.float32).div_(255.0)


def _to_uint8(rgb: Tensor, out: np.ndarray) -> None:
    """(1, 3, h, W) in [0, 1] -> rounded uint8 written into `out`, an (h, W, 3) array."""
    scaled = torch.mul(rgb.detach()[0].permute(1, 2, 0), 255.0).round_().clamp_(0, 255)
    torch.from_numpy(out).copy_(scaled)  # whole numbers: the cast to uint8 is exact


def tensor_to_image(rgb: Tensor) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] -> (H, W, 3) uint8, rounded; in bands of rows, so an expanded
    gray tensor (stride 0 over channels) never becomes a full-size float copy."""
    if rgb.ndim != 4 or rgb.shape[:2] != (1, 3):
        raise ConfigError(f"expected a (1, 3, H, W) RGB tensor, got {tuple(rgb.shape)}")
    image = np.empty((*rgb.shape[2:], 3), dtype=np.uint8)
    rows = band_rows(rgb.shape[-1])
    for top in range(0, rgb.shape[-2], rows):
        _to_uint8(rgb[..., top : top + rows, :], image[top : top + rows])
    return image


def gray_image(rgb_uint8: np.ndarray) -> np.ndarray:
    """The gray version of an (H, W, 3) uint8 photo: same CIELAB L, no chroma, as uint8 RGB."""
    l = rgb_to_lab(image_to_tensor(rgb_uint8))[:, :1]
    return tensor_to_image(gray_from_l(l).expand(-1, 3, -1, -1))


def lab_image(rgb_uint8: np.ndarray) -> np.ndarray:
    """CIELAB of an (H, W, 3) uint8 sRGB image as an (H, W, 3) float32 array (L, a, b)."""
    return rgb_to_lab(image_to_tensor(rgb_uint8))[0].permute(1, 2, 0).numpy()


def mean_chroma(rgb_uint8: np.ndarray, *, probe: int = 64) -> float:
    """Mean CIELAB chroma of an (H, W, 3) uint8 image, measured on a copy at most `probe` px
    wide: cheap enough for every image of a corpus; near 0 for gray images."""
    small = Image.fromarray(rgb_uint8)
    small.thumbnail((probe, probe))
    return float(chroma(rgb_to_lab(image_to_tensor(np.asarray(small)))).mean())
