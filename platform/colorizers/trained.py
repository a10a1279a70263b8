"""Trained colorizer: the learned colorization sub-net (ColorNet) from a model file.

The net reads `colornet_inputs(...)` on the matching grid and predicts ab there; guided
upsampling along the target's own L brings that ab to full resolution, exactly as the
training-free colorizer does, and the pipeline keeps the target's exact L.

Why the grid and not the working resolution (256 px working copy: 64 x 96 grid vs 256 x 384
pixels; 2 CPU threads on a shared, loaded machine, best of 7): colornet_small 0.39 vs
6.2 GMAC (0.05-0.09 s vs 0.6-0.8 s), colornet_base 6.7 vs 107 GMAC (0.24 s vs 8 s). Warped ab
and the similarities are grid quantities that upsampling would only repeat, and the guided
filter restores the target's edges afterwards.

    >>> pipe = ColorizationPipeline(
    ...     PipelineConfig(colorizer="trained", trained=TrainedConfig(model="colornet.pt")))
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor

from chromaref.platform.colorizers._base import COLORIZERS, Colorizer, PreparedImage
from chromaref.platform.colorizers.chroma_gate import ChromaGate, match_strength
from chromaref.platform.colorizers.training_free import propagated_grid_ab
from chromaref.platform.config import (
    MatchingConfig,
    PipelineConfig,
    PropagationConfig,
    TrainedConfig,
)
from chromaref.platform.errors import ConfigError, WeightsError
from chromaref.platform.filters import guided_upsample
from chromaref.platform.models.colornet import (
    SHIPPED_MODEL,
    ColorNet,
    ColorNetConfig,
    colornet_inputs,
)
from chromaref.platform.similarity import Correspondence, FeatureGrid

logger = logging.getLogger(__name__)


def check_matching(model: ColorNet, matching: MatchingConfig) -> None:
    """The model only understands the features it was trained on: another backbone is refused;
    other matching settings (stride, level weights, temperature) work but shift the inputs."""
    stored = model.meta.matching if model.meta else None
    if not stored:
        return
    backbone = stored.get("backbone")
    if backbone != matching.backbone:
        raise WeightsError(
            f"{model.meta.path}: trained on {backbone} features, but matching.backbone is "
            f"{matching.backbone}; set matching.backbone={backbone} or use a model trained on "
            f"{matching.backbone}"
        )
    # memory only; and training crops are sized on their own (a convolutional net on grid
    # cells of the same stride), so another working size is not a mismatch
    current = matching.model_dump(mode="json", exclude={"max_chunk_elements", "working_size"})
    differ = {
        k: (v, current[k])
        for k, v in stored.items()
        if k in current and current[k] != (list(v) if isinstance(v, tuple) else v)
    }
    if differ:
        logger.warning("matching settings differ from training (trained, now): %s", differ)


def network_inputs(
    net: ColorNetConfig,
    target_l_work: Tensor,
    target_grid: FeatureGrid,
    correspondence: Correspondence,
    propagation: PropagationConfig,
    base_ab: Tensor | None = None,
) -> Tensor:
    """`colornet_inputs` for this network, at inference and in training alike: a residual
    ColorNet also reads the training-free grid ab that it corrects (`base_ab` when given, e.g.
    the video mode's, which also carries the previous frames' colors)."""
    if not net.residual:
        return colornet_inputs(target_l_work, target_grid, correspondence)
    if base_ab is None:
        base_ab = propagated_grid_ab(target_l_work, correspondence, propagation)
    return colornet_inputs(target_l_work, target_grid, correspondence, base_ab)


def upsample_grid_ab(
    ab_grid: Tensor, l_work: Tensor, l_full: Tensor, config: TrainedConfig
) -> Tensor:
    """ColorNet's grid ab -> (B, 2, H, W) at `l_full`'s size, along the target's own edges;
    the one step between the network and the exact-L output, shared with validation."""
    return guided_upsample(
        ab_grid, l_work, l_full, radius=config.upsample_radius, eps=config.upsample_eps
    )


@COLORIZERS.register("trained")
class TrainedColorizer(Colorizer):
    """ColorNet on the matching grid, then guided upsampling to full resolution."""

    name = "trained"

    def __init__(self, config: PipelineConfig) -> None:
        super().__init__(config)
        self.config = config.trained
        self.propagation = config.propagation
        self.net = ColorNet.from_file(self.config.model or SHIPPED_MODEL)
        for p in self.net.parameters():
            p.requires_grad_(False)
        check_matching(self.net, config.matching)
        meta = self.net.meta
        try:
            self.gate = ChromaGate.from_calibration(meta.calibration)
        except (TypeError, ValueError) as exc:
            raise WeightsError(
                f"{meta.path}: unusable calibration {meta.calibration} ({exc})"
            ) from None
        logger.info("colornet %s (sha256 %s, run %s)", meta.path, meta.sha256[:12], meta.run_id)

    @torch.inference_mode()
    def grid_ab(
        self, target: PreparedImage, correspondence: Correspondence, base_ab: Tensor | None = None
    ) -> Tensor:
        """ColorNet's gated ab on the matching grid; a residual net corrects `base_ab` (None:
        the training-free grid ab of this correspondence)."""
        if target.grid is None:
            raise ConfigError("the trained colorizer needs matching features and a correspondence")
        inputs = network_inputs(
            self.net.config, target.l_work, target.grid, correspondence, self.propagation, base_ab
        )
        self.net.to(inputs.device)
        ab_grid = self.net(inputs)
        if self.config.calibrated:
            ab_grid = self.gate(
                ab_grid, match_strength(correspondence.similarity, self.propagation)
            )
        return ab_grid

    def predict_ab(
        self, target: PreparedImage, reference: PreparedImage, correspondence: Correspondence | None
    ) -> Tensor:
        if correspondence is None:
            raise ConfigError("the trained colorizer needs matching features and a correspondence")
        ab_grid = self.grid_ab(target, correspondence)
        return upsample_grid_ab(ab_grid, target.l_work, target.l_full, self.config)
