"""Edge-aware filters for chroma: a weighted-least-squares solver and guided upsampling.

Both are guided by the target's luminance, so colors stop at the target's own edges rather
than at the blocky edges of the matching grid. All work in torch on (1, C, H, W) tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.filters import box_blur
from torch import Tensor

from chromaref.platform.color import band_rows


def _edge_weights(guide: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
    """Affinities between 4-neighbours: ~1 inside flat regions, ~0 across luminance edges."""
    wx = torch.exp(-((guide[..., :, 1:] - guide[..., :, :-1]) ** 2) / (2 * sigma**2))
    wy = torch.exp(-((guide[..., 1:, :] - guide[..., :-1, :]) ** 2) / (2 * sigma**2))
    return wx, wy


def _laplacian(x: Tensor, wx: Tensor, wy: Tensor) -> Tensor:
    """Weighted graph Laplacian of x on the 4-connected pixel grid."""
    out = torch.zeros_like(x)
    fx = wx * (x[..., :, 1:] - x[..., :, :-1])
    fy = wy * (x[..., 1:, :] - x[..., :-1, :])
    out[..., :, :-1] -= fx
    out[..., :, 1:] += fx
    out[..., :-1, :] -= fy
    out[..., 1:, :] += fy
    return out


def weighted_least_squares(
    data: Tensor,
    confidence: Tensor,
    guide: Tensor,
    *,
    smoothness: float,
    sigma: float,
    prior: float,
    iterations: int = 80,
) -> Tensor:
    """Confidence-weighted, edge-aware propagation of `data` (Lischinski-style WLS).

    Minimises sum c_p (x_p - d_p)^2 + smoothness * sum w_pq (x_p - x_q)^2 + prior * sum x_p^2
    by conjugate gradients. Confident cells keep their values, unconfident ones are filled from
    neighbours of similar luminance, and the small `prior` pulls regions with no confident
    neighbour towards zero chroma (gray) instead of inventing colors.

    Args:
        data: (1, C, h, w) values to propagate (e.g. warped ab).
        confidence: (1, 1, h, w) data weights in [0, 1].
        guide: (1, 1, h, w) luminance (L, 0..100) that shapes the edges.
    """
    wx, wy = _edge_weights(guide, sigma)
    diag = confidence + prior

    def apply(x: Tensor) -> Tensor:
        return diag * x + smoothness * _laplacian(x, wx, wy)

    rhs = confidence * data
    x = data * confidence / diag  # a warm start close to the answer where confidence is high
    residual = rhs - apply(x)
    direction = residual.clone()
    rs = (residual * residual).sum(dim=(-2, -1), keepdim=True)
    for _ in range(iterations):
        ad = apply(direction)
        alpha = rs / (direction * ad).sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
        x = x + alpha * direction
        residual = residual - alpha * ad
        rs_new = (residual * residual).sum(dim=(-2, -1), keepdim=True)
        if float(rs_new.max()) < 1e-8:
            break
        direction = residual + (rs_new / rs.clamp_min(1e-12)) * direction
        rs = rs_new
    return x


def _bilinear_rows(top: int, bottom: int, source_rows: int, rows: int) -> tuple[Tensor, ...]:
    """Source rows and weights of output rows top..bottom-1 of a bilinear resize (align_corners
    False) from `source_rows` to `rows`, computed in float32 as torch's own kernel does."""
    scale = torch.tensor(source_rows, dtype=torch.float32) / rows
    position = ((torch.arange(top, bottom, dtype=torch.float32) + 0.5) * scale - 0.5).clamp_min(0)
    first = position.floor().long().clamp_max(source_rows - 1)
    weight = (position - first).clamp(0.0, 1.0)[:, None]
    second = torch.where(first < source_rows - 1, first + 1, first)
    return first, second, weight


def guided_upsample(
    source: Tensor, guide_low: Tensor, guide_high: Tensor, *, radius: int, eps: float
) -> Tensor:
    """Fast guided filter (He and Sun 2015): fit `source ~ a * guide + b` locally at low
    resolution, then apply the upsampled (a, b) to the full-resolution guide.

    The result is the only full-resolution allocation: (a, b) are resized bilinearly along x
    at their low row count, then along y one band of output rows at a time (the same sums as
    one 2-D bilinear resize), and applied to that band of the guide. The result inherits the
    sharp edges of the full-resolution luminance.
    """
    if source.shape[-2:] != guide_low.shape[-2:]:
        source = F.interpolate(
            source, size=guide_low.shape[-2:], mode="bilinear", align_corners=False
        )
    k = 2 * radius + 1
    mean_i = box_blur(guide_low, k, border_type="replicate")
    mean_p = box_blur(source, k, border_type="replicate")
    cov_ip = box_blur(guide_low * source, k, border_type="replicate") - mean_i * mean_p
    var_i = box_blur(guide_low * guide_low, k, border_type="replicate") - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    coefficients = box_blur(torch.cat([a, b], dim=1), k, border_type="replicate")
    low_rows, channels = coefficients.shape[-2], source.shape[1]
    height, width = guide_high.shape[-2:]
    coefficients = F.interpolate(
        coefficients, size=(low_rows, width), mode="bilinear", align_corners=False
    )
    out = guide_high.new_empty((guide_high.shape[0], channels, height, width))
    rows = band_rows(width, guide_high.shape[0])
    for top in range(0, height, rows):
        bottom = min(top + rows, height)
        first, second, weight = (
            x.to(coefficients.device) for x in _bilinear_rows(top, bottom, low_rows, height)
        )
        band = coefficients[..., first, :] * (1 - weight) + coefficients[..., second, :] * weight
        out[..., top:bottom, :] = (
            band[:, :channels] * guide_high[..., top:bottom, :] + band[:, channels:]
        )
    return out
