"""Fitting the chroma gate (`chromaref.platform.colorizers.chroma_gate`) on held-out pairs.

Each held-out photo is colorized once from its own warped view (a reference that matches) and
from `others` other photos (retrieved or random: references that match little), keeping the
net's raw grid ab and the match strength; every gate of a small grid is then applied to those
and the one with the best mean PSNR is kept, no gate when none beats it. Two numbers from a
few dozen pairs: cheap, and a gate only moves chroma towards gray, it never invents any.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from chromaref.platform.color import lab_to_image_keep_l
from chromaref.platform.colorizers.chroma_gate import ChromaGate, match_strength
from chromaref.platform.colorizers.trained import network_inputs, upsample_grid_ab
from chromaref.platform.config import MatchingConfig, PipelineConfig, TrainedConfig
from chromaref.platform.metrics import psnr
from chromaref.platform.models.colornet import ColorNet
from chromaref.platform.pipeline import ColorizationPipeline
from chromaref.training.config import TrainConfig
from chromaref.training.pairs import CHROMA, PERCEPTUAL, Pair, PairMaker, Photo, sample_rng

FLOORS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
KNEES = (0.05, 0.1, 0.2, 0.3, 0.5)


def calibration_pairs(maker: PairMaker, seed: int, limit: int, others: int) -> list[Pair]:
    """For each of the first `limit` held-out photos: its warped self and `others` others."""
    pairs = []
    for index in range(min(limit, len(maker.targets))):
        pairs.append(maker.pair(index, sample_rng(seed, "calibration", index), CHROMA))
        for other in range(others):
            rng = sample_rng(seed, "calibration", index, other)
            pairs.append(maker.pair(index, rng, PERCEPTUAL))
    return pairs


@dataclass(frozen=True)
class GateFit:
    """The fitted gate and the mean PSNR of the pairs with it and without any."""

    gate: ChromaGate
    psnr: float
    ungated_psnr: float
    pairs: int

    def metrics(self) -> dict[str, float]:
        return {
            "calibration/floor": self.gate.floor,
            "calibration/knee": self.gate.knee,
            "calibration/psnr": self.psnr,
            "calibration/ungated_psnr": self.ungated_psnr,
            "calibration/pairs": float(self.pairs),
        }


def candidate_gates() -> Iterator[ChromaGate]:
    """No gate first (it wins ties), then the grid."""
    yield ChromaGate()
    for floor in FLOORS:
        for knee in KNEES:
            yield ChromaGate(floor=floor, knee=knee)


@torch.no_grad()
def fit_chroma_gate(
    model: ColorNet, pipeline: ColorizationPipeline, pairs: Sequence[Pair]
) -> GateFit:
    """The candidate gate with the best mean RGB PSNR over `pairs`, colorized as the `trained`
    colorizer does (grid ab, gate, guided upsampling, exact L)."""
    propagation, upsample = pipeline.config.propagation, TrainedConfig()
    raw = []
    for pair in pairs:
        target, reference = pipeline.prepare_many([pair.target, pair.reference])
        match = pipeline.correspond(target, reference)
        inputs = network_inputs(model.config, target.l_work, target.grid, match, propagation)
        raw.append((model(inputs), match_strength(match.similarity, propagation), target, pair))

    def mean_psnr(gate: ChromaGate) -> float:
        scores = []
        for ab_grid, strength, target, pair in raw:
            ab = upsample_grid_ab(gate(ab_grid, strength), target.l_work, target.l_full, upsample)
            scores.append(psnr(lab_to_image_keep_l(target.l_full, ab), pair.target))
        return float(np.mean(scores))

    scores = {gate: mean_psnr(gate) for gate in candidate_gates()}
    best = max(scores, key=scores.__getitem__)
    return GateFit(
        gate=best,
        psnr=scores[best],
        ungated_psnr=scores[ChromaGate()],
        pairs=len(pairs),
    )


def fit_on_held_out(
    model: ColorNet,
    config: TrainConfig,
    *,
    val: Sequence[Photo],
    train: Sequence[Photo],
    neighbours: dict[str, list[str]],
) -> GateFit | None:
    """The gate for `model`, fitted on the run's held-out photos with references drawn as in
    training; pairs are made at the working size `colorize` runs at by default (crops of the
    photos at inference size). None when there is nothing to fit on."""
    others = config.data.calibration_references
    if not val or others == 0:
        return None
    matching = config.matching.model_copy(update={"working_size": MatchingConfig().working_size})
    maker = PairMaker(val, train, neighbours, config.data, matching.working_size)
    pairs = calibration_pairs(maker, config.seed, config.data.max_val_images, others)
    return fit_chroma_gate(model, ColorizationPipeline(PipelineConfig(matching=matching)), pairs)
