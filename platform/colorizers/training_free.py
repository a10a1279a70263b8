"""Training-free colorizer: warped reference chroma, trusted where the match is good.

Similarity -> confidence; confidence-weighted, luminance-guided weighted least squares at the
matching grid fills unmatched cells from matched neighbours of similar luminance and fades
to gray where nothing matches; guided upsampling brings the chroma to full resolution along
the target's own edges. No colorization weights are needed.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from chromaref.platform.colorizers._base import COLORIZERS, Colorizer, PreparedImage
from chromaref.platform.config import PipelineConfig, PropagationConfig
from chromaref.platform.errors import ConfigError
from chromaref.platform.filters import guided_upsample, weighted_least_squares
from chromaref.platform.similarity import Correspondence


def match_confidence(similarity: Tensor, config: PropagationConfig) -> Tensor:
    """Map cosine similarity to a [0, 1] trust in the warped color."""
    span = max(config.similarity_ceiling - config.similarity_floor, 1e-6)
    unit = ((similarity - config.similarity_floor) / span).clamp(0.0, 1.0)
    return unit**config.confidence_power


def propagated_grid_ab(
    l_work: Tensor, correspondence: Correspondence, config: PropagationConfig
) -> Tensor:
    """The training-free ab on the matching grid: warped reference chroma where the match is
    trusted, filled along the target's luminance elsewhere and faded to gray where nothing
    matches. The trained colorizer's residual ColorNet starts from exactly this."""
    return weighted_least_squares(
        correspondence.warped_ab,
        match_confidence(correspondence.similarity, config),
        F.adaptive_avg_pool2d(l_work, correspondence.grid_size),
        smoothness=config.smoothness,
        sigma=config.edge_sigma,
        prior=config.gray_prior,
        iterations=config.iterations,
    )


@COLORIZERS.register("training-free")
class TrainingFreeColorizer(Colorizer):
    name = "training-free"

    def __init__(self, config: PipelineConfig) -> None:
        super().__init__(config)
        self.config = config.propagation

    def predict_ab(
        self, target: PreparedImage, reference: PreparedImage, correspondence: Correspondence | None
    ) -> Tensor:
        if correspondence is None:
            raise ConfigError("the training-free colorizer needs a correspondence")
        cfg = self.config
        return guided_upsample(
            propagated_grid_ab(target.l_work, correspondence, cfg),
            target.l_work,
            target.l_full,
            radius=cfg.upsample_radius,
            eps=cfg.upsample_eps,
        )
