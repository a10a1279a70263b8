"""Similarity sub-net: dense bidirectional correspondence between target and reference.

Paper sections 1 and 4.1 (PAPER.md): deep features of the target L and the reference L,
a cosine-similarity correspondence, per-level similarity maps in both directions and the
reference chroma warped onto the target. Instead of Deep Image Analogy's PatchMatch we use the
video follow-up's dense cosine attention (soft warp with a temperature), computed in row chunks
so that memory stays bounded by `max_chunk_elements` whatever the image size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class FeatureGrid:
    """Per-level unit-norm features resampled to one matching grid, plus their weighted concat."""

    levels: list[Tensor]  # each (1, C_l, h, w), unit norm over channels
    combined: Tensor  # (1, sum C_l, h, w), unit norm over channels

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.combined.shape[-2:])


@dataclass(frozen=True)
class Correspondence:
    """Everything the colorizer needs to know about how target cells match the reference.

    Maps are cosine similarities (1 = identical features) on the target's matching grid.
    `similarity` is the forward T->R best match; `cycle_similarity` is the paper's
    bidirectional term (the R->T match quality of the reference cell that p maps to);
    `level_similarity` holds the forward similarity of each feature level separately.
    """

    warped_ab: Tensor  # (1, 2, h, w) reference chroma softly warped onto the target grid
    similarity: Tensor  # (1, 1, h, w)
    cycle_similarity: Tensor  # (1, 1, h, w)
    level_similarity: Tensor  # (1, L, h, w)
    cycle_distance: Tensor  # (1, 1, h, w) grid cells between p and its T->R->T round trip
    match: Tensor  # (1, h, w) flat index of the best reference cell
    reference_grid_size: tuple[int, int]

    @property
    def grid_size(self) -> tuple[int, int]:
        return tuple(self.similarity.shape[-2:])


def grid_size_for(image_size: tuple[int, int], stride: int) -> tuple[int, int]:
    """Matching grid for an (H, W) working image: one cell per `stride` pixels, at least 1."""
    return tuple(max(1, round(side / stride)) for side in image_size)


def feature_grid(
    features: list[Tensor], size: tuple[int, int], level_weights: tuple[float, ...]
) -> FeatureGrid:
    """Resample every level to `size`, L2-normalise each, and concatenate with weights.

    Normalising per level keeps a 320-channel level from drowning a 24-channel one; the
    weights then set each level's share of the combined cosine.
    """
    if len(level_weights) != len(features):
        raise ValueError(f"{len(level_weights)} level weights for {len(features)} feature levels")
    levels, parts = [], []
    total = sum(level_weights)
    for feature, weight in zip(features, level_weights, strict=True):
        resized = F.interpolate(
            feature,
            size=size,
            mode="bilinear",
            align_corners=False,
            antialias=feature.shape[-2] > size[0],
        )
        unit = F.normalize(resized, dim=1, eps=1e-6)
        levels.append(unit)
        parts.append(unit * math.sqrt(weight / total))
    return FeatureGrid(levels=levels, combined=torch.cat(parts, dim=1))


def _flat(x: Tensor) -> Tensor:
    """(1, C, h, w) -> (h*w, C)."""
    return x.flatten(2).squeeze(0).T.contiguous()


def _matches_both_ways(
    query: Tensor,
    keys: Tensor,
    values: Tensor,
    *,
    temperature: float,
    max_chunk_elements: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Best matches of every query row among the keys and of every key among the queries,
    from one pass over the score matrix (the two directions share it: half the matmuls).

    Returns, per query row: best cosine, its key index and the softmax-weighted average of
    `values`; per key: best cosine and its query index. Rows go in chunks of at most
    `max_chunk_elements` scores; ties resolve to the lowest index either way, as `max` does.
    """
    rows = max(1, max_chunk_elements // keys.shape[0])
    best, index, soft = [], [], []
    key_best = torch.full((keys.shape[0],), -torch.inf, dtype=query.dtype, device=query.device)
    key_index = torch.zeros(keys.shape[0], dtype=torch.long, device=query.device)
    for start in range(0, query.shape[0], rows):
        scores = query[start : start + rows] @ keys.T
        top, arg = scores.max(dim=1)
        best.append(top)
        index.append(arg)
        column_top, column_arg = scores.max(dim=0)
        better = column_top > key_best  # strictly: an earlier chunk keeps a tie
        key_best = torch.where(better, column_top, key_best)
        key_index = torch.where(better, column_arg + start, key_index)
        weights = torch.softmax(scores.sub_(top[:, None]).div_(temperature), dim=1)
        soft.append(weights @ values)
    return torch.cat(best), torch.cat(index), torch.cat(soft), key_best, key_index


def correspond(
    target: FeatureGrid,
    reference: FeatureGrid,
    reference_ab: Tensor,
    *,
    temperature: float = 0.01,
    max_chunk_elements: int = 1 << 24,
) -> Correspondence:
    """Dense bidirectional correspondence from target grid cells to reference grid cells.

    Args:
        target: features of the target L on its matching grid.
        reference: features of the reference L on its matching grid.
        reference_ab: (1, 2, H, W) reference chroma at any size (area-resampled to the grid).
        temperature: softmax temperature on cosine scores; small values approach a hard argmax.
        max_chunk_elements: bound on the size of one block of the similarity matrix.
    """
    h, w = target.size
    hr, wr = reference.size
    ab = F.adaptive_avg_pool2d(reference_ab, (hr, wr))
    t, r = _flat(target.combined), _flat(reference.combined)
    sim, match, warped, back_sim, back_match = _matches_both_ways(
        t, r, _flat(ab), temperature=temperature, max_chunk_elements=max_chunk_elements
    )
    round_trip = back_match[match]
    dy = torch.div(round_trip, w, rounding_mode="floor") - torch.div(
        torch.arange(h * w), w, rounding_mode="floor"
    )
    dx = round_trip % w - torch.arange(h * w) % w
    level_sims = [
        (_flat(tl) * _flat(rl)[match]).sum(dim=1)
        for tl, rl in zip(target.levels, reference.levels, strict=True)
    ]

    def as_map(values: Tensor) -> Tensor:
        return values.reshape(1, 1, h, w)

    return Correspondence(
        warped_ab=warped.T.reshape(1, 2, h, w),
        similarity=as_map(sim),
        cycle_similarity=as_map(back_sim[match]),
        level_similarity=torch.cat([as_map(s) for s in level_sims], dim=1),
        cycle_distance=as_map(torch.sqrt((dx * dx + dy * dy).float())),
        match=match.reshape(1, h, w),
        reference_grid_size=(hr, wr),
    )
