"""ColorNet: the learned colorization sub-net (PAPER.md sections 2 and 4.2), read top-down.

What goes in (`colornet_inputs`, the one place training and inference build it), the config,
the blocks, the U-Net, then the builders (`colornet_small`, `colornet_base`) and the model file.

The paper's ExampleColorNet / ColorVidNet is a U-Net over the target's L, the warped reference
chroma and similarity maps, with dilated middle blocks and skip connections, ending in
`tanh * scale` ab. Ours keeps that shape and adapts it to our similarity sub-net:

* it runs on the matching grid (one cell per `grid_stride` working pixels, 64 x 96 for a
  256 px working copy), where the correspondence lives, and the colorizer brings ab to full
  resolution with the guided filter along the target's own L, as the training-free colorizer
  does. At 256 px this costs 1/16 of running at the working resolution, and the grid already
  carries the information: warped ab and similarities are grid quantities, upsampled copies
  would only repeat them (measurements in the colorizer's docstring);
* it also reads the target's frozen backbone features (reduced by a 1x1 conv), which let a
  small network learn content-to-color priors cheaply: the paper's perceptual branch, which
  must colorize plausibly where the reference does not match;
* it is residual by default: it also reads the training-free colorizer's grid ab and predicts
  a bounded correction to it, so an untrained net is exactly the training-free colorizer and
  training only has to learn where that is wrong (an unreliable reference: plausible colors
  instead). Trained from gray on 2 CPU cores, a plain net had not learned to follow a given
  reference after 500 steps (6.9 dB below training-free); the residual one starts there;
* upsampling is nearest + 3x3 conv (ColorVidNet), not ConvTranspose: no checkerboard;
* normalisation is per sample (GroupNorm by default, or InstanceNorm as ColorVidNet), never
  BatchNorm: a batch of one at inference then computes exactly what training computed, and
  the pairs of a training batch do not leak statistics into each other.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from torch import Tensor, nn

from chromaref.platform.errors import ConfigError, WeightsError
from chromaref.platform.models._api import load_strict
from chromaref.platform.models._weights_io import (
    HOW_TO_GET,
    ModelFileMeta,
    load_model_file,
    save_model_file,
)
from chromaref.platform.similarity import Correspondence, FeatureGrid

logger = logging.getLogger(__name__)

ARCHITECTURE = "colornet"
# The model `--method trained` uses without --model (docs/model_card.md; tools/ship_model.py).
SHIPPED_MODEL = Path(__file__).with_name("weights") / "colornet_small.pt"
L_CENTER = 50.0  # CIELAB L in [0, 100] -> (L - 50) / 50 in [-1, 1]
AB_SCALE = 128.0  # CIELAB a, b -> ab / 128, about [-1, 1]
_LEVELS = 4  # encoder resolutions: 1, 1/2, 1/4, 1/8 of the input grid


# ---------------------------------------------------------------------------- inputs


def colornet_inputs(
    target_l_work: Tensor,
    target_grid: FeatureGrid,
    correspondence: Correspondence,
    base_ab: Tensor | None = None,
) -> Tensor:
    """The network input for one target/reference pair, on the matching grid.

    Channel layout of the (1, 5 + R + S + C, h, w) result, R = 2 with `base_ab` (a residual
    ColorNet) else 0, S = feature levels, C = combined backbone channels
    (efficientnet_lite0: S = 4, C = 496):

    * 0: target L, area-averaged to the grid, as (L - 50) / 50
    * 1-2: warped reference ab / 128
    * 3-4 (residual only): `base_ab` / 128, the ab the network corrects
    * then: forward similarity (cosine of the best T->R match, 1 = identical)
    * then: cycle similarity (R->T match quality of the reference cell p maps to)
    * then S: per-level forward similarity, finest level first
    * last C: the target's combined features x sqrt(C), i.e. unit RMS per channel

    Args:
        target_l_work: (1, 1, H, W) target CIELAB L at the working resolution.
        target_grid: the target's feature grid (`PreparedImage.grid`).
        correspondence: target -> reference correspondence on the same grid.
        base_ab: (1, 2, h, w) grid ab a residual ColorNet starts from (the training-free
            colorizer's `propagated_grid_ab`); None for a plain ColorNet.
    """
    size = correspondence.grid_size
    if target_grid.size != size:
        raise ConfigError(f"feature grid {target_grid.size} != correspondence grid {size}")
    l_grid = F.adaptive_avg_pool2d(target_l_work, size)
    features = target_grid.combined
    base = [] if base_ab is None else [base_ab / AB_SCALE]
    return torch.cat(
        [
            (l_grid - L_CENTER) / L_CENTER,
            correspondence.warped_ab / AB_SCALE,
            *base,
            correspondence.similarity,
            correspondence.cycle_similarity,
            correspondence.level_similarity,
            features * math.sqrt(features.shape[1]),
        ],
        dim=1,
    )


def colornet_target(target_lab_work: Tensor, grid_size: tuple[int, int]) -> Tensor:
    """The ground-truth ab a training loss compares with ColorNet's output: the target's
    working-resolution ab, area-averaged to the grid exactly as its L is in the inputs."""
    return F.adaptive_avg_pool2d(target_lab_work[:, 1:], grid_size)


# ---------------------------------------------------------------------------- config


class ColorNetConfig(BaseModel):
    """Hyperparameters of one ColorNet; stored in every model file and rebuilt from it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    similarity_channels: int = Field(6, ge=1, description="2 + one per feature level")
    feature_channels: int = Field(496, ge=0, description="combined backbone channels; 0 = none")
    feature_reduce: int = Field(16, ge=1, description="features after the 1x1 reduction")
    width: int = Field(16, ge=4, description="channels at the grid's resolution, x2 per level")
    max_width: int = Field(512, ge=4, description="cap on channels at coarse levels")
    depths: tuple[int, int, int, int] = Field(
        (2, 2, 2, 2), description="3x3 convs per encoder level (and the decoder's mirror)"
    )
    middle_blocks: int = Field(2, ge=0, description="dilated residual blocks at 1/8")
    dilation: int = Field(2, ge=1)
    norm: Literal["group", "instance"] = "group"
    groups: int = Field(8, ge=1, description="GroupNorm groups (capped at the channels)")
    ab_scale: float = Field(AB_SCALE, gt=0, description="output is tanh(x) * ab_scale")
    residual: bool = Field(
        False,
        description="inputs hold the training-free grid ab (channels 3-4) and the output is "
        "that ab plus tanh(x) * ab_scale: an untrained net equals the training-free colorizer",
    )

    @model_validator(mode="after")
    def _check(self) -> ColorNetConfig:
        if min(self.depths) < 1:
            raise ValueError(f"every level needs at least one conv, got depths={self.depths}")
        if self.norm == "group":
            bad = [w for w in self.widths if w % min(self.groups, w)]
            if bad:
                raise ValueError(f"widths {bad} are not divisible by groups={self.groups}")
        return self

    @property
    def guide_channels(self) -> int:
        """Channels before the backbone features: L, warped ab, base ab, similarities."""
        return 3 + 2 * self.residual + self.similarity_channels

    @property
    def in_channels(self) -> int:
        return self.guide_channels + self.feature_channels

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(min(self.width * 2**level, self.max_width) for level in range(_LEVELS))


def make_config(**values: Any) -> ColorNetConfig:
    """ColorNetConfig(**values), with a bad value raised as a one-line ConfigError."""
    try:
        return ColorNetConfig(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid ColorNet config: {problems}") from None


# ---------------------------------------------------------------------------- blocks


def _norm(config: ColorNetConfig, channels: int) -> nn.Module:
    if config.norm == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.GroupNorm(min(config.groups, channels), channels)


def _conv(cin: int, cout: int, *, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation)


class ConvStage(nn.Sequential):
    """`depth` x (3x3 conv, ReLU), then a norm: one resolution level of the paper's net.
    The first conv may stride 2, which is how the encoder goes down a level."""

    def __init__(self, config: ColorNetConfig, cin: int, cout: int, depth: int, stride: int = 1):
        layers: list[nn.Module] = []
        for index in range(depth):
            layers += [_conv(cin if index == 0 else cout, cout, stride=stride if index == 0 else 1)]
            layers += [nn.ReLU(inplace=True)]
        super().__init__(*layers, _norm(config, cout))


class DilatedBlock(nn.Module):
    """Two dilated 3x3 convs with a residual path: a wider view of the coarsest level (the
    paper's conv5/conv6) without losing its resolution."""

    def __init__(self, config: ColorNetConfig, channels: int):
        super().__init__()
        d = config.dilation
        self.body = nn.Sequential(
            _conv(channels, channels, dilation=d),
            nn.ReLU(inplace=True),
            _conv(channels, channels, dilation=d),
            _norm(config, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.body(x))


class UpStage(nn.Module):
    """Nearest x2 + 3x3 conv, plus a 3x3 'short' conv on the encoder's skip, summed (as the
    paper's conv8_1/conv3_3_short), then the rest of the level's convs."""

    def __init__(self, config: ColorNetConfig, cin: int, cskip: int, cout: int, depth: int):
        super().__init__()
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), _conv(cin, cout))
        self.short = _conv(cskip, cout)
        rest: list[nn.Module] = []
        for _ in range(depth - 1):
            rest += [_conv(cout, cout), nn.ReLU(inplace=True)]
        self.rest = nn.Sequential(*rest, _norm(config, cout))

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.rest(F.relu(self.up(x) + self.short(skip)))


# ---------------------------------------------------------------------------- network


class ColorNet(nn.Module):
    """U-Net from `colornet_inputs(...)` (1 or B, in_channels, h, w) to ab (B, 2, h, w).

    Any h, w works: the input is replicate-padded to a multiple of 8 (and at least 16, so the
    coarsest level has more than one cell to normalise over) and the output cropped back.
    """

    meta: ModelFileMeta | None = None  # set when loaded from a file

    def __init__(self, config: ColorNetConfig | None = None):
        super().__init__()
        self.config = config = config or ColorNetConfig()
        split = config.guide_channels
        self._split = split
        self.reduce = None
        cin = split
        if config.feature_channels:
            self.reduce = nn.Sequential(
                nn.Conv2d(config.feature_channels, config.feature_reduce, 1), nn.ReLU(inplace=True)
            )
            cin += config.feature_reduce
        w, d = config.widths, config.depths
        self.encoder = nn.ModuleList(
            ConvStage(config, cin if i == 0 else w[i - 1], w[i], d[i], stride=1 if i == 0 else 2)
            for i in range(_LEVELS)
        )
        self.middle = nn.Sequential(
            *(DilatedBlock(config, w[-1]) for _ in range(config.middle_blocks))
        )
        self.decoder = nn.ModuleList(
            UpStage(config, w[i + 1], w[i], w[i], d[i]) for i in reversed(range(_LEVELS - 1))
        )
        self.head = nn.Sequential(
            _conv(w[0], w[0]), nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(w[0], 2, 1)
        )
        # An untrained net predicts ~gray (a residual one: ~its base ab) with tanh in its
        # linear range; default init saturates tanh at random colors, and starts slower
        # (measured: L1 1.0 vs 1.8 after 150 Adam steps on one pair).
        nn.init.normal_(self.head[-1].weight, std=1e-3)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ConfigError(
                f"ColorNet expects (B, {self.config.in_channels}, h, w) inputs "
                f"(colornet_inputs), got {tuple(x.shape)}: the model was trained on other "
                "features or similarity levels"
            )
        h, w = x.shape[-2:]
        unit = 2 ** (_LEVELS - 1)
        pad_h, pad_w = (max(-(-side // unit) * unit, 2 * unit) - side for side in (h, w))
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        y = x[:, : self._split]
        if self.reduce is not None:
            y = torch.cat([y, self.reduce(x[:, self._split :])], dim=1)
        skips = []
        for stage in self.encoder:
            y = stage(y)
            skips.append(y)
        y = self.middle(y)
        for stage, skip in zip(self.decoder, reversed(skips[:-1]), strict=True):
            y = stage(y, skip)
        ab = torch.tanh(self.head(y)[..., :h, :w]) * self.config.ab_scale
        if self.config.residual:
            base = x[:, 3:5, :h, :w] * AB_SCALE
            ab = (base + ab).clamp(-self.config.ab_scale, self.config.ab_scale)
        return ab

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ColorNet:
        """Rebuild the architecture from the file's stored config and load its weights (eval
        mode, float32); `model.meta` records the file's provenance and sha256."""
        state, meta = load_model_file(path, architecture=ARCHITECTURE)
        try:
            config = ColorNetConfig(**meta.config)
        except (ValidationError, TypeError) as exc:
            raise WeightsError(
                f"{path}: invalid ColorNet config in the file; {HOW_TO_GET}"
            ) from exc
        model = cls(config)
        load_strict(model, state, what=ARCHITECTURE, path=Path(path))
        model.meta = meta
        return model.eval()

    def save(
        self,
        path: str | os.PathLike[str],
        *,
        half: bool = False,
        run_id: str | None = None,
        matching: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        dataset: dict[str, Any] | None = None,
        calibration: dict[str, Any] | None = None,
    ) -> Path:
        """Write this model's file (see `_weights_io.save_model_file` for the arguments).
        `matching` should be `PipelineConfig.matching.model_dump()` of the training inputs."""
        return save_model_file(
            path,
            self.state_dict(),
            architecture=ARCHITECTURE,
            config=self.config.model_dump(mode="json"),
            half=half,
            run_id=run_id,
            matching=matching,
            metrics=metrics,
            dataset=dataset,
            calibration=calibration,
        )


# ---------------------------------------------------------------------------- builders

VARIANTS: dict[str, dict[str, Any]] = {
    # ~1 M parameters: trains on a CPU.
    "colornet_small": {"width": 16, "depths": (2, 2, 2, 2), "middle_blocks": 2, "residual": True},
    # The paper's widths (64 .. 512) and depths (2, 2, 3, 3); 3 middle blocks as its conv5-7
    # (all dilated here, with residuals). About 25.6 M parameters.
    "colornet_base": {
        "width": 64,
        "depths": (2, 2, 3, 3),
        "middle_blocks": 3,
        "feature_reduce": 64,
        "residual": True,
    },
}


def _colornet(variant: str, weights: str | os.PathLike[str] | None, **kwargs: Any) -> ColorNet:
    """The variant's config with `kwargs` applied; with `weights`, the file must hold exactly
    that config (a conflict raises, as torchvision's `_ovewrite_named_param`)."""
    config = make_config(**{**VARIANTS[variant], **kwargs})
    if weights is None:
        return ColorNet(config)
    model = ColorNet.from_file(weights)
    stored, wanted = model.config.model_dump(), config.model_dump()
    differ = [f"{k}={stored[k]!r} (asked {wanted[k]!r})" for k in wanted if stored[k] != wanted[k]]
    if differ:
        raise ConfigError(
            f"{weights} does not hold a {variant}: {', '.join(differ)}; "
            "use ColorNet.from_file to load whatever it holds"
        )
    return model


def colornet_small(*, weights: str | os.PathLike[str] | None = None, **kwargs: Any) -> ColorNet:
    """The small ColorNet (about 1 M parameters), randomly initialised or from a model file."""
    return _colornet("colornet_small", weights, **kwargs)


def colornet_base(*, weights: str | os.PathLike[str] | None = None, **kwargs: Any) -> ColorNet:
    """The paper-sized ColorNet (widths 64 to 512), randomly initialised or from a file."""
    return _colornet("colornet_base", weights, **kwargs)
