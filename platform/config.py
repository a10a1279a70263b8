"""Typed, frozen configuration for matching, propagation and the pipeline.

Defaults live here and work with zero configuration; values from CLI options, settings files
and `--set KEY=VALUE` (`chromaref.platform.settings`) are validated by pydantic before
anything is built: unknown keys and wrong types fail.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MatchingConfig(_Frozen):
    """How features are computed and matched (the similarity sub-net)."""

    backbone: str = "efficientnet_lite0"
    working_size: int = Field(256, ge=32, le=4096, description="long side of the matching copy")
    grid_stride: int = Field(4, ge=1, le=32, description="working pixels per matching cell")
    level_weights: tuple[float, ...] | None = Field(
        None, description="share of each feature level in the cosine; None = equal"
    )
    temperature: float = Field(0.01, gt=0, description="softmax temperature of the soft warp")
    max_chunk_elements: int = Field(1 << 24, ge=1 << 10, description="similarity block bound")


class PropagationConfig(_Frozen):
    """The training-free colorizer: similarity -> confidence -> edge-aware propagation."""

    similarity_floor: float = Field(0.45, description="cosine below which a match is ignored")
    similarity_ceiling: float = Field(0.85, description="cosine at which a match is fully trusted")
    confidence_power: float = Field(2.0, gt=0)
    smoothness: float = Field(1.0, ge=0, description="WLS neighbour coupling")
    edge_sigma: float = Field(5.0, gt=0, description="L difference that counts as an edge")
    gray_prior: float = Field(0.01, ge=0, description="pull towards gray where nothing matches")
    iterations: int = Field(80, ge=1)
    upsample_radius: int = Field(2, ge=1, description="guided upsampling window (working px)")
    upsample_eps: float = Field(4.0, gt=0, description="guided upsampling regulariser (L^2)")


class TrainedConfig(_Frozen):
    """The trained colorizer: which model file, and how its grid ab reaches full resolution.

    The network's own architecture comes from the file, never from here.
    """

    model: str | None = Field(
        None, description="colornet model file (chromaref train makes one); None: the shipped one"
    )
    calibrated: bool = Field(
        True, description="apply the file's chroma gate (fitted on held-out pairs); False: raw"
    )
    upsample_radius: int = Field(2, ge=1, description="guided upsampling window (working px)")
    upsample_eps: float = Field(4.0, gt=0, description="guided upsampling regulariser (L^2)")


# Colorizers that match every frame to the reference, as the video mode needs.
VIDEO_COLORIZERS = ("trained", "training-free")


class VideoConfig(_Frozen):
    """Temporal propagation: each frame also takes the previous result's colors, carried by
    optical flow, where the flow holds; scene cuts re-anchor on the reference."""

    temporal: bool = Field(True, description="off: every frame colorized on its own")
    temporal_weight: float = Field(
        0.5,
        ge=0,
        lt=1,
        description="share of the previous frames' color evidence kept where the flow holds",
    )
    hold: float = Field(
        0.25,
        ge=0,
        description="trust in the previous result's colors where the flow holds (a reference "
        "match is at most 1): steadies what the reference matches poorly",
    )
    flow_sigma: float = Field(6.0, gt=0, description="L error (0..100) that halves the trust")
    scene_cut: float = Field(
        0.6, gt=0, le=2, description="L-histogram L1 jump (0..2) between frames that is a cut"
    )


# Mean Lab chroma below which an image counts as gray (no colors to transfer or recover);
# the pipeline's default, and the bar index builds and evaluations apply to whole photos.
MIN_REFERENCE_CHROMA = 2.0


class PipelineConfig(_Frozen):
    """Everything `ColorizationPipeline` needs, in one frozen, validated value."""

    colorizer: str = "trained"
    matching: MatchingConfig = MatchingConfig()
    propagation: PropagationConfig = PropagationConfig()
    trained: TrainedConfig = TrainedConfig()
    min_reference_chroma: float = Field(
        MIN_REFERENCE_CHROMA, ge=0, description="mean Lab chroma below which a reference is gray"
    )
