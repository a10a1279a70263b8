"""Validation on the held-out photos: the metrics of `chromaref eval` on fixed pairs.

Each held-out photo gets two fixed pairs, drawn once from the seed: its own warped view
(`self`, the chrominance branch) and another photo (`other`: retrieved when an index is
given, else random; the perceptual branch). The result is made as the `trained` colorizer
makes it (ColorNet on the grid, guided upsampling along the target's L, exact L kept) and
scored with `chromaref.platform.metrics`: RGB PSNR and its gain over the gray input (the
default-model bar: a reference that does not match must not make things worse than gray), ab
SSIM, the colorfulness gap to the truth and the ab-histogram distance to the reference
(faithfulness).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from chromaref.platform.color import gray_image, lab_image, lab_to_rgb_keep_l, tensor_to_image
from chromaref.platform.colorizers.trained import upsample_grid_ab
from chromaref.platform.config import TrainedConfig
from chromaref.platform.metrics import ab_histogram_distance, ab_ssim, colorfulness, psnr
from chromaref.platform.models.colornet import ColorNet
from chromaref.platform.pipeline import ColorizationPipeline
from chromaref.training.config import LossConfig
from chromaref.training.inputs import make_batch
from chromaref.training.losses import smooth_l1_ab
from chromaref.training.pairs import CHROMA, PERCEPTUAL, Pair, PairMaker, sample_rng

KINDS = {CHROMA: "self", PERCEPTUAL: "other"}
METRICS = ("loss", "psnr", "psnr_over_gray", "ssim_ab", "colorfulness_gap", "reference_distance")


def validation_pairs(maker: PairMaker, seed: int, limit: int) -> list[Pair]:
    """Two fixed pairs (self, other) for each of the first `limit` held-out photos."""
    pairs = []
    for index in range(min(limit, len(maker.targets))):
        for branch in (CHROMA, PERCEPTUAL):
            pairs.append(maker.pair(index, sample_rng(seed, "val", index, branch), branch))
    return pairs


@dataclass
class Scores:
    """Metric sums and counts per `val/<kind>/<metric>` key, plus sample rows for a grid."""

    sums: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rows: list[list[np.ndarray]] = field(default_factory=list)
    labels: list[list[str]] = field(default_factory=list)

    def keys(self) -> list[str]:
        return [f"val/{kind}/{metric}" for kind in KINDS.values() for metric in METRICS]


@torch.no_grad()
def score_pairs(
    model: ColorNet,
    pipeline: ColorizationPipeline,
    pairs: Sequence[Pair],
    loss: LossConfig,
    *,
    grid_rows: int = 0,
) -> Scores:
    """Colorize each pair and add its metrics; the first `grid_rows` pairs also give a row
    (gray input | reference | result | truth) for the sample grid."""
    upsample = TrainedConfig()
    scores = Scores()
    for pair in pairs:
        batch = make_batch(pipeline, [pair], model.config)
        ab_grid = model(batch.inputs)
        l_work = batch.lab_work[:, :1]
        ab = upsample_grid_ab(ab_grid, l_work, l_work, upsample)
        result = tensor_to_image(lab_to_rgb_keep_l(l_work, ab).cpu())
        result_lab, truth_lab = lab_image(result), lab_image(pair.target)
        gray = gray_image(pair.target)
        values = {
            "loss": float(smooth_l1_ab(ab_grid, batch.truth_ab, loss.smooth_l1_beta)[0]),
            "psnr": psnr(result, pair.target),
            "psnr_over_gray": psnr(result, pair.target) - psnr(gray, pair.target),
            "ssim_ab": ab_ssim(result_lab, truth_lab),
            "colorfulness_gap": abs(colorfulness(result) - colorfulness(pair.target)),
            "reference_distance": ab_histogram_distance(result_lab, lab_image(pair.reference)),
        }
        kind = KINDS[pair.branch]
        for metric, value in values.items():
            scores.sums[f"val/{kind}/{metric}"] += value
            scores.counts[f"val/{kind}/{metric}"] += 1
        if len(scores.rows) < grid_rows:
            scores.rows.append([gray, pair.reference, result, pair.target])
            name = pair.target_uri.rsplit("/", 1)[-1]
            scores.labels.append(
                [f"{name} (gray)", f"reference: {kind}", f"PSNR {values['psnr']:.1f} dB", "truth"]
            )
    return scores
