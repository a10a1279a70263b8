"""TrainConfig: every option of `chromaref train`, typed, frozen and validated before Ray starts.

Defaults live here; a YAML file (configs/train.yaml) overrides them, and the command line
overrides the file (nanoGPT's configurator, on a pydantic model instead of `exec`). Unknown
keys and wrong types are one-line `ConfigError`s that name the key and the file.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from chromaref.platform.config import MIN_REFERENCE_CHROMA, MatchingConfig
from chromaref.platform.settings import resolve_settings

logger = logging.getLogger(__name__)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataConfig(_Frozen):
    """Training pairs: crops, the split, and the mix of the two branches."""

    min_crop: float = Field(0.5, gt=0, le=1, description="smallest square crop / short side")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="held-out share (by content hash)")
    max_val_images: int = Field(16, ge=1, description="validation images per evaluation")
    chroma_probability: float = Field(
        0.5, ge=0, le=1, description="share of samples in the chrominance (self-reference) branch"
    )
    unrelated_probability: float = Field(
        0.2, ge=0, le=1, description="perceptual references drawn at random even with an index"
    )
    neighbours: int = Field(5, ge=1, description="retrieved references kept per photo")
    warp_strength: float = Field(
        0.06, ge=0, le=0.25, description="thin-plate warp of the self reference (x side)"
    )
    min_chroma: float = Field(
        MIN_REFERENCE_CHROMA, ge=0, description="photos below this mean chroma are skipped"
    )
    loader_workers: int = Field(0, ge=0, description="DataLoader processes per Ray worker")
    calibration_references: int = Field(
        5, ge=0, description="other references per held-out photo to fit the chroma gate; 0 = none"
    )


class LossConfig(_Frozen):
    """Loss weights per branch (all on ab / 128, so the weights are comparable)."""

    chroma_weight: float = Field(1.0, ge=0, description="smooth-L1 on ab, chrominance branch")
    smooth_l1_beta: float = Field(0.05, gt=0)
    perceptual_weight: float = Field(1.0, ge=0, description="backbone feature loss")
    perceptual_ab_weight: float = Field(0.1, ge=0, description="weak ab term, perceptual branch")
    perceptual_ab_loss: Literal["smooth_l1", "l2"] = Field(
        "smooth_l1", description="that term's form: l2 leans to the mean color where unsure"
    )
    perceptual_levels: tuple[int, ...] = Field(
        (1, 2, 3), min_length=1, description="backbone levels compared (0 = finest)"
    )
    smoothness_weight: float = Field(0.05, ge=0, description="luminance-aware TV on ab")
    smoothness_sigma: float = Field(5.0, gt=0, description="L step that counts as an edge")


class OptimConfig(_Frozen):
    """AdamW and its learning-rate schedule (nanoGPT's: linear warm-up, then cosine decay)."""

    lr: float = Field(3e-4, gt=0, description="peak learning rate")
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = Field(1.0, ge=0, description="max gradient norm; 0 = off")
    warmup_steps: int = Field(0, ge=0, description="steps of linear warm-up to lr")
    schedule: Literal["constant", "cosine"] = Field(
        "constant", description="after warm-up: keep lr, or decay it to min_lr_ratio * lr"
    )
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="cosine: final lr / lr")

    def lr_at(self, step: int, total_steps: int) -> float:
        """The learning rate of optimizer step `step` (1-based) of `total_steps`.

        A function of the step alone, so a restarted or resumed run continues on the same
        curve; a `--resume` with another `--steps` follows the new total's curve (the rate
        may jump at the resume)."""
        if step <= self.warmup_steps:
            return self.lr * step / self.warmup_steps
        if self.schedule == "constant":
            return self.lr
        progress = min(1.0, (step - self.warmup_steps) / max(1, total_steps - self.warmup_steps))
        floor = self.lr * self.min_lr_ratio
        return floor + 0.5 * (1.0 + math.cos(math.pi * progress)) * (self.lr - floor)


class TrackingConfig(_Frozen):
    """MLflow: None = $MLFLOW_TRACKING_URI, else sqlite:///mlruns.db in the working folder."""

    tracking_uri: str | None = None
    experiment: str = "chromaref"
    registered_model: str = "chromaref-colorizer"
    register_model: bool = True


class DebugConfig(_Frozen):
    """Test-only fault injection: proves restarts and the divergence stop on real runs."""

    fail_at_step: int | None = Field(
        None, ge=1, description="rank 1 exits at this step, once (attempts not resumed)"
    )
    nan_at_step: int | None = Field(None, ge=1, description="the loss becomes NaN at this step")


class TrainConfig(_Frozen):
    """One training run. Stored in every checkpoint and logged to MLflow."""

    corpus: str | None = Field(None, description="folder or corpus URI of color photos")
    index: str | None = Field(None, description="index for retrieved perceptual references")
    out: str = Field("chromaref-model", description="folder for the final model file")
    name: str | None = Field(None, description="run name (storage folder); None = generated")
    storage: str = Field("chromaref-runs", description="Ray Train storage: checkpoints")
    model: str = Field("colornet_small", description="ColorNet builder")
    model_options: dict[str, Any] = Field(default_factory=dict, description="builder kwargs")
    init: str | None = Field(
        None,
        description="fine-tune: start from this model's weights (`shipped`, a colornet file, "
        "runs:/<id>/model or models:/<name>/<version>); its architecture replaces model and "
        "model_options",
    )
    matching: MatchingConfig = MatchingConfig()
    epochs: int = Field(10, ge=1)
    steps: int | None = Field(None, ge=1, description="total optimizer steps; overrides epochs")
    batch_size: int = Field(8, ge=1, description="pairs per worker per step")
    workers: int = Field(1, ge=1)
    cpus_per_worker: float = Field(1.0, gt=0)
    gpus_per_worker: float = Field(0.0, ge=0)
    checkpoint_every: int = Field(100, ge=1, description="steps between checkpoints")
    keep_checkpoints: int = Field(2, ge=1)
    max_failures: int = Field(2, ge=-1, description="worker restarts; -1 = unlimited")
    log_every: int = Field(10, ge=1)
    validate_every: int | None = Field(
        None, ge=1, description="steps between validations; null = at each epoch's end"
    )
    seed: int = 0
    data: DataConfig = DataConfig()
    loss: LossConfig = LossConfig()
    optim: OptimConfig = OptimConfig()
    tracking: TrackingConfig = TrackingConfig()
    debug: DebugConfig = DebugConfig()

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        from chromaref.platform.models import colornet

        if self.model not in colornet.VARIANTS:
            known = ", ".join(sorted(colornet.VARIANTS))
            raise ValueError(f"unknown model {self.model!r}; available: {known}")
        colornet.make_config(**{**colornet.VARIANTS[self.model], **self.model_options})
        return self


def resolve_config(
    base: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    source: str = "config",
) -> TrainConfig:
    """Defaults <- `base` (a YAML file's dict or a stored config) <- `overrides` (dotted keys),
    validated as one TrainConfig.

    Raises:
        ConfigError: one line naming every bad key or value.
    """
    return resolve_settings(TrainConfig, base, overrides, source=source)


def to_yaml(config: TrainConfig) -> str:
    """The resolved config as YAML: an MLflow artifact and a valid --config file."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
