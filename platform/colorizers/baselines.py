"""Classical baselines, in the same package for honest comparison.

A new colorizer is only worth its cost if it beats these on the same inputs:

* Reinhard, Ashikhmin, Gooch, Shirley (2001), "Color Transfer between Images", IEEE CG&A
  21(5): match per-channel mean and standard deviation, done here in CIELAB.
* Welsh, Ashikhmin, Mueller (2002), "Transferring Color to Greyscale Images", SIGGRAPH
  (global version): luminance remapping, jittered reference samples, and per-pixel best
  match on luminance and neighbourhood standard deviation.

Both take the target's L and a reference's Lab and return ab at the target's resolution; L is
never changed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from kornia.filters import box_blur
from torch import Tensor

from chromaref.platform.colorizers._base import COLORIZERS, Colorizer, PreparedImage
from chromaref.platform.errors import ConfigError
from chromaref.platform.similarity import Correspondence

_EPS = 1e-6
# ab spread (CIELAB units) under which a target counts as gray: its noise is not blown up.
_MIN_TARGET_STD = 1.0
# Target pixels x reference samples per distance chunk in `welsh_transfer` (16 MiB float32).
_CHUNK_ELEMENTS = 1 << 22


def _check_inputs(target_l: Tensor, reference_lab: Tensor) -> None:
    """Raise ConfigError unless target_l is (1, 1, H, W) and reference_lab is (1, 3, h, w)."""
    if target_l.ndim != 4 or target_l.shape[:2] != (1, 1):
        raise ConfigError(f"target L must be (1, 1, H, W), got {tuple(target_l.shape)}")
    if reference_lab.ndim != 4 or reference_lab.shape[:2] != (1, 3):
        raise ConfigError(f"reference Lab must be (1, 3, h, w), got {tuple(reference_lab.shape)}")


def _mean_std(channels: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and (population) standard deviation of (1, C, H, W), as (1, C, 1, 1)."""
    std, mean = torch.std_mean(channels, dim=(-2, -1), correction=0, keepdim=True)
    return mean, std


def reinhard_transfer(
    target_l: Tensor, reference_lab: Tensor, *, target_ab: Tensor | None = None
) -> Tensor:
    """Reinhard et al. (2001) color transfer on a and b: the target's mean and std become the
    reference's. (1, 1, H, W) L, (1, 3, h, w) Lab -> (1, 2, H, W) ab.

    `target_ab` (1, 2, H, W) is the target's own chroma; without it the target is gray (ab = 0),
    which has no spread to rescale, so every pixel gets the reference's mean ab. A spread
    under one ab unit is treated as noise of a gray target and is not blown up.
    """
    _check_inputs(target_l, reference_lab)
    size = target_l.shape[-2:]
    reference_mean, reference_std = _mean_std(reference_lab[:, 1:])
    if target_ab is None:  # what the formula gives for ab = 0, without full-size temporaries
        return reference_mean.expand(1, 2, *size).contiguous()
    if target_ab.shape != (1, 2, *size):
        raise ConfigError(f"target ab must be (1, 2, {size[0]}, {size[1]}), got {target_ab.shape}")
    mean, std = _mean_std(target_ab)
    return (target_ab - mean) * (reference_std / std.clamp_min(_MIN_TARGET_STD)) + reference_mean


def _local_std(l: Tensor, window: int) -> Tensor:
    """Standard deviation of L in each pixel's window x window neighbourhood (edges replicated)."""
    mean = box_blur(l, window, border_type="replicate")
    mean_of_squares = box_blur(l * l, window, border_type="replicate")
    return (mean_of_squares - mean * mean).clamp_min(0.0).sqrt()


def _remap_luminance(reference_l: Tensor, target_l: Tensor) -> Tensor:
    """Welsh's luminance remapping: reference L moved linearly to the target's L mean and std."""
    reference_mean, reference_std = _mean_std(reference_l)
    target_mean, target_std = _mean_std(target_l)
    gain = target_std / reference_std.clamp_min(_EPS)
    return (reference_l - reference_mean) * gain + target_mean


def _jittered_grid(
    height: int, width: int, samples: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """`samples` (y, x) pixel positions: one uniform draw in each of `samples` cells of a grid
    shaped like the image (a random subset of cells when the grid has a few more)."""
    columns = max(1, round(math.sqrt(samples * width / height)))
    rows = math.ceil(samples / columns)
    cells = torch.randperm(rows * columns, generator=generator)[:samples]
    jitter = torch.rand((2, samples), generator=generator, dtype=torch.float64)
    ys = ((cells // columns + jitter[0]) * height / rows).long().clamp_(max=height - 1)
    xs = ((cells % columns + jitter[1]) * width / columns).long().clamp_(max=width - 1)
    return ys, xs


def _nearest(queries: Tensor, points: Tensor) -> Tensor:
    """(N, D), (S, D) -> (N,) index of each query's nearest point, in chunks of bounded size."""
    rows = max(1, _CHUNK_ELEMENTS // points.shape[0])
    return torch.cat(
        [
            torch.cdist(
                queries[start : start + rows], points, compute_mode="donot_use_mm_for_euclid_dist"
            ).argmin(dim=1)
            for start in range(0, queries.shape[0], rows)
        ]
    )


def welsh_transfer(
    target_l: Tensor,
    reference_lab: Tensor,
    *,
    samples: int = 256,
    window: int = 5,
    seed: int = 0,
) -> Tensor:
    """Welsh et al. (2002), global version. (1, 1, H, W) L, (1, 3, h, w) Lab -> (1, 2, H, W) ab.

    The reference L is remapped to the target's L mean and std; `samples` reference pixels are
    drawn on a jittered grid (deterministic for a given `seed`); each sample and each target
    pixel is described by its L and the std of L in a `window` x `window` neighbourhood, weighted
    50/50 (equal weights: plain Euclidean distance); every target pixel takes the ab of its
    nearest sample.
    """
    _check_inputs(target_l, reference_lab)
    if samples < 1 or window < 1:
        raise ConfigError(f"samples and window must be >= 1, got {samples} and {window}")
    reference_l = _remap_luminance(reference_lab[:, :1], target_l)
    generator = torch.Generator().manual_seed(seed)
    ys, xs = _jittered_grid(*reference_l.shape[-2:], samples, generator)
    features = torch.cat([reference_l, _local_std(reference_l, window)], dim=1)
    sample_features = features[0, :, ys, xs].T  # (S, 2)
    sample_ab = reference_lab[0, 1:, ys, xs].T  # (S, 2)
    target_features = torch.cat([target_l, _local_std(target_l, window)], dim=1).flatten(2)[0].T
    ab = sample_ab[_nearest(target_features, sample_features)]  # (H * W, 2)
    return ab.T.reshape(1, 2, *target_l.shape[-2:])


@COLORIZERS.register("reinhard")
class ReinhardColorizer(Colorizer):
    """Reinhard transfer onto a gray target: the reference's mean chroma everywhere."""

    name = "reinhard"
    needs_correspondence = False

    def predict_ab(
        self, target: PreparedImage, reference: PreparedImage, correspondence: Correspondence | None
    ) -> Tensor:
        return reinhard_transfer(target.l_full, reference.lab_work)


@COLORIZERS.register("welsh")
class WelshColorizer(Colorizer):
    """Welsh transfer at the working resolution, brought to full size (nearest)."""

    name = "welsh"
    needs_correspondence = False

    def predict_ab(
        self, target: PreparedImage, reference: PreparedImage, correspondence: Correspondence | None
    ) -> Tensor:
        ab = welsh_transfer(target.l_work, reference.lab_work)
        if ab.shape[-2:] == target.l_full.shape[-2:]:
            return ab
        return F.interpolate(ab, size=target.l_full.shape[-2:], mode="nearest")
