"""Losses of the two branches (PAPER.md section 4.3), per sample so branches mix in a batch.

* chrominance branch (reference = a warped view of the truth): smooth-L1 on ab;
* perceptual branch (reference = another photo): distance between the frozen backbone's
  features of the result and of the truth, plus a weak ab term: smooth-L1, or squared error
  (`perceptual_ab_loss: l2`), whose minimiser where nothing tells the colors apart is their
  mean, less saturated than the median smooth-L1 leads to, and what PSNR scores;
* both: a luminance-aware total variation on ab (DEVC's smoothness term, in TV form):
  chroma should change where L changes, not inside flat regions.

All ab terms are on ab / 128, so the weights of `LossConfig` are comparable.

Why the backbone sees RGB: its `forward` reads L only (that is what matching needs), and a
loss on L would be blind to the colors being judged. The result is turned into sRGB with the
target's own L and fed through the backbone's ImageNet input path (`normalize` + `extract`),
the path its weights were trained on, where color moves the features. The truth goes the same
way from its ab averaged to the grid, the best a grid-resolution prediction can reach.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from chromaref.platform.color import lab_to_rgb
from chromaref.platform.models import Backbone
from chromaref.platform.models.colornet import AB_SCALE
from chromaref.training.config import LossConfig
from chromaref.training.inputs import Batch

TERMS = ("chroma", "perceptual", "perceptual_ab", "smoothness")


def smooth_l1_ab(pred: Tensor, truth: Tensor, beta: float) -> Tensor:
    """(B,) smooth-L1 between two (B, 2, h, w) ab maps, on ab / 128."""
    loss = F.smooth_l1_loss(pred / AB_SCALE, truth / AB_SCALE, beta=beta, reduction="none")
    return loss.mean(dim=(1, 2, 3))


def squared_ab(pred: Tensor, truth: Tensor) -> Tensor:
    """(B,) mean squared error between two (B, 2, h, w) ab maps, on ab / 128."""
    return ((pred - truth) / AB_SCALE).square().mean(dim=(1, 2, 3))


def smoothness(ab: Tensor, l: Tensor, sigma: float) -> Tensor:
    """(B,) luminance-aware total variation of (B, 2, h, w) ab given (B, 1, h, w) L: chroma
    steps cost exp(-|L step| / sigma), so they are cheap at edges and dear in flat regions."""
    cost = ab.new_zeros(ab.shape[0])
    for dim in (2, 3):
        d_ab = (ab.diff(dim=dim) / AB_SCALE).abs().sum(dim=1, keepdim=True)
        weight = torch.exp(-l.diff(dim=dim).abs() / sigma)
        cost = cost + (d_ab * weight).mean(dim=(1, 2, 3))
    return cost


def result_rgb(l_work: Tensor, ab_grid: Tensor) -> Tensor:
    """(B, 3, S, S) sRGB of grid ab upsampled (bilinear) under the working-size L; the
    differentiable stand-in for the colorizer's guided upsampling."""
    ab = F.interpolate(ab_grid, size=l_work.shape[-2:], mode="bilinear", align_corners=False)
    return lab_to_rgb(torch.cat([l_work, ab], dim=1))


class PerceptualLoss:
    """Feature distance through a frozen backbone's RGB path: per chosen level, the mean over
    positions of |f_result - f_truth|^2 with features unit-normalised over channels (0..4)."""

    def __init__(self, backbone: Backbone, levels: tuple[int, ...]) -> None:
        self.backbone, self.levels = backbone, levels

    def _features(self, rgb: Tensor) -> list[Tensor]:
        features = self.backbone.extract(self.backbone.normalize(rgb))
        return [F.normalize(features[i], dim=1, eps=1e-6) for i in self.levels]

    def __call__(self, result: Tensor, truth: Tensor) -> Tensor:
        with torch.no_grad():
            wanted = self._features(truth)
        got = self._features(result)
        pairs = zip(got, wanted, strict=True)
        per_level = [((g - w) ** 2).sum(dim=1).mean(dim=(1, 2)) for g, w in pairs]
        return torch.stack(per_level).mean(dim=0)


@dataclass(frozen=True)
class Losses:
    """The total to minimise and, per term, (sum over samples, samples) for logging."""

    total: Tensor  # scalar, mean over the batch of each sample's weighted loss
    terms: dict[str, tuple[Tensor, int]]


def compute_losses(
    pred_ab: Tensor, batch: Batch, perceptual: PerceptualLoss, config: LossConfig
) -> Losses:
    """Every sample's loss by its branch; the perceptual features run only for its samples."""
    chroma_mask = batch.chroma
    l_grid = F.adaptive_avg_pool2d(batch.lab_work[:, :1], pred_ab.shape[-2:])
    ab_error = smooth_l1_ab(pred_ab, batch.truth_ab, config.smooth_l1_beta)
    other_ab_error = (
        squared_ab(pred_ab, batch.truth_ab) if config.perceptual_ab_loss == "l2" else ab_error
    )
    tv = smoothness(pred_ab, l_grid, config.smoothness_sigma)
    per_sample = config.smoothness_weight * tv
    per_sample = per_sample + torch.where(
        chroma_mask, config.chroma_weight * ab_error, config.perceptual_ab_weight * other_ab_error
    )
    terms = {"smoothness": (tv.detach().sum(), len(batch))}
    terms["chroma"] = (ab_error.detach()[chroma_mask].sum(), int(chroma_mask.sum()))
    terms["perceptual_ab"] = (
        other_ab_error.detach()[~chroma_mask].sum(),
        int((~chroma_mask).sum()),
    )
    other = (~chroma_mask).nonzero().flatten()
    feature = pred_ab.new_zeros(())
    if len(other) and config.perceptual_weight > 0:
        l_work = batch.lab_work[other, :1]
        feature = perceptual(
            result_rgb(l_work, pred_ab[other]), result_rgb(l_work, batch.truth_ab[other])
        )
        per_sample = per_sample.index_add(0, other, config.perceptual_weight * feature)
    terms["perceptual"] = (feature.detach().sum(), len(other))
    return Losses(total=per_sample.mean(), terms=terms)
