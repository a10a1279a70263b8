"""ColorizationPipeline: gray target + color references -> one colorized image per reference.

    >>> pipe = ColorizationPipeline()
    >>> outputs = pipe("gray.jpg", ["ref1.jpg", "ref2.jpg"])
    >>> outputs[0].rgb.shape   # the target's (H, W, 3), with the target's own L channel

Features are computed on a copy whose long side is `working_size` (scaled down, or up for a
smaller image); chroma is predicted there and resampled along the target's full-resolution
luminance, which is kept exactly.

Memory is bounded in the pixels: full resolution holds only L (float32), the predicted ab and
the uint8 result; conversions run in bands of rows (`color.band_rows`), so a 100 MP photo
needs a few GB, not tens.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from chromaref.platform import colorizers
from chromaref.platform.color import (
    band_rows,
    chroma,
    image_to_tensor,
    lab_to_image_keep_l,
    rgb_to_lab,
)
from chromaref.platform.colorizers import PreparedImage
from chromaref.platform.config import PipelineConfig
from chromaref.platform.errors import ConfigError, UnusableReferenceError
from chromaref.platform.images import ImageInput, LoadedImage, as_rgb
from chromaref.platform.models import Backbone, get_backbone
from chromaref.platform.similarity import (
    Correspondence,
    FeatureGrid,
    correspond,
    feature_grid,
    grid_size_for,
)
from chromaref.platform.timing import StageTimer

logger = logging.getLogger(__name__)

MAX_ASPECT_RATIO = 50.0
MIN_WORKING_SIDE = 32


@dataclass(frozen=True)
class ColorizationOutput:
    """One colorization: the RGB result, which reference made it, and where time went."""

    rgb: np.ndarray  # (H, W, 3) uint8 at the target's resolution
    reference: str
    seconds: dict[str, float] = field(default_factory=dict)
    correspondence: Correspondence | None = None


def working_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """Size of the matching copy: long side at `long_side`, short side at least
    MIN_WORKING_SIDE.

    A smaller image is scaled up, not matched at its own size: the backbone then sees its
    content at the scale it sees a reference's, and on bundled photos with another-view
    references a 128 px target gained 2.6 dB (28.4 -> 31.0), a 64 px one 4.9 dB, while an
    unrelated reference cost 0.3 dB more, as it does at any size.
    """
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ConfigError(
            f"image is {width}x{height} px; aspect ratios above {MAX_ASPECT_RATIO:.0f}:1 "
            "are not supported"
        )
    scale = max(long_side / max(height, width), MIN_WORKING_SIDE / min(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _resize(lab: Tensor, size: tuple[int, int]) -> Tensor:
    return F.interpolate(lab, size=size, mode="bilinear", antialias=True, align_corners=False)


def _lab_planes(
    rgb: np.ndarray, long_side: int, device: torch.device, *, full_l: bool = True
) -> tuple[Tensor, Tensor]:
    """(H, W, 3) uint8 -> L at full resolution (1, 1, H, W) and Lab at the working size
    (1, 3, h, w), converting one band of rows at a time. Without `full_l`, the L returned is
    the working copy's and no full-resolution plane is made.

    The working copy is the antialiased bilinear resize of the full Lab image. That resize is
    separable, so each band is resized along x as it is converted, and the (H, w) result along
    y at the end: the full-resolution Lab image never exists.
    """
    height, width = rgb.shape[:2]
    size = working_shape(height, width, long_side)
    l_full = torch.empty((1, 1, height, width), device=device) if full_l else None
    narrow = torch.empty((1, 3, height, size[1]), device=device)  # resized along x only
    rows = band_rows(width)
    for top in range(0, height, rows):
        lab = rgb_to_lab(image_to_tensor(rgb[top : top + rows]).to(device))
        if l_full is not None:
            l_full[..., top : top + rows, :] = lab[:, :1]
        narrow[..., top : top + rows, :] = _resize(lab, (lab.shape[-2], size[1]))
    lab_work = _resize(narrow, size)
    return (lab_work[:, :1] if l_full is None else l_full), lab_work


def _default_name(image: ImageInput) -> str:
    if isinstance(image, LoadedImage):
        return Path(image.path or "image").stem
    return "array" if isinstance(image, np.ndarray) else Path(image).stem


class ColorizationPipeline:
    """Backbone + similarity sub-net + a colorizer, configured once and reused for many images."""

    def __init__(
        self, config: PipelineConfig | None = None, *, device: str | torch.device | None = None
    ) -> None:
        self.config = config or PipelineConfig()
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.colorizer = colorizers.get_colorizer(self.config.colorizer, config=self.config)
        self.backbone: Backbone | None = None
        if self.colorizer.needs_correspondence:
            self.backbone = get_backbone(self.config.matching.backbone).to(self.device)

    @torch.inference_mode()
    def prepare(
        self,
        image: ImageInput,
        *,
        name: str | None = None,
        timer: StageTimer | None = None,
        full_l: bool = True,
    ) -> PreparedImage:
        """Lab conversion, working copy and matching features: done once per image.

        `full_l=False` is for a reference, whose full-resolution L colorizing never reads: its
        `l_full` is then the working copy's L (no 4 B/px plane is made or kept), and its
        working copy and features are exactly those of `full_l=True`.
        """
        timer = timer or StageTimer()
        rgb, name = as_rgb(image), name or _default_name(image)
        with timer("convert"):
            l_full, lab_work = _lab_planes(
                rgb, self.config.matching.working_size, self.device, full_l=full_l
            )
        grid = None
        if self.backbone is not None:
            with timer("features"):
                grid = self._feature_grid(lab_work[:, :1])
        return PreparedImage(name=name, l_full=l_full, lab_work=lab_work, grid=grid)

    @torch.inference_mode()
    def prepare_many(
        self, images: Sequence[ImageInput], *, names: Sequence[str | None] | None = None
    ) -> list[PreparedImage]:
        """`prepare` for several images, with one backbone pass per group of images whose
        working copies have the same shape (a served batch of same-size photos); results
        match `prepare`'s up to float rounding."""
        names = names or [None] * len(images)
        converted = []
        for image, name in zip(images, names, strict=True):
            rgb = as_rgb(image)
            l_full, lab_work = _lab_planes(rgb, self.config.matching.working_size, self.device)
            converted.append((name or _default_name(image), l_full, lab_work))
        grids: list[FeatureGrid | None] = [None] * len(converted)
        if self.backbone is not None:
            by_shape: dict[tuple[int, ...], list[int]] = {}
            for i, (_, _, lab_work) in enumerate(converted):
                by_shape.setdefault(tuple(lab_work.shape), []).append(i)
            for members in by_shape.values():
                l_work = torch.cat([converted[i][2][:, :1] for i in members])
                for i, grid in zip(members, self._feature_grids(l_work), strict=True):
                    grids[i] = grid
        return [
            PreparedImage(name=name, l_full=l_full, lab_work=lab_work, grid=grid)
            for (name, l_full, lab_work), grid in zip(converted, grids, strict=True)
        ]

    def _feature_grid(self, l_work: Tensor) -> FeatureGrid:
        return self._feature_grids(l_work)[0]

    def _feature_grids(self, l_work: Tensor) -> list[FeatureGrid]:
        """One feature grid per image of an (N, 1, h, w) batch, from one backbone pass."""
        matching = self.config.matching
        features = self.backbone(l_work)
        weights = tuple(matching.level_weights or (1.0,) * len(features))
        size = grid_size_for(tuple(l_work.shape[-2:]), matching.grid_stride)
        return [
            feature_grid([level[i : i + 1] for level in features], size, weights)
            for i in range(l_work.shape[0])
        ]

    def check_reference(self, reference: PreparedImage) -> None:
        """A reference must carry color: a gray one has nothing to transfer."""
        mean_chroma = float(chroma(reference.lab_work[:, 1:]).mean())
        if mean_chroma < self.config.min_reference_chroma:
            raise UnusableReferenceError(
                f"reference {reference.name!r} has no color to transfer (mean chroma "
                f"{mean_chroma:.1f} < {self.config.min_reference_chroma}); use a color photo"
            )

    def correspond(self, target: PreparedImage, reference: PreparedImage) -> Correspondence:
        """The similarity sub-net's output for a prepared pair, with the pipeline's matching
        settings (training builds ColorNet's inputs from exactly this)."""
        matching = self.config.matching
        return correspond(
            target.grid,
            reference.grid,
            reference.lab_work[:, 1:],
            temperature=matching.temperature,
            max_chunk_elements=matching.max_chunk_elements,
        )

    @torch.inference_mode()
    def colorize(
        self,
        target: PreparedImage,
        reference: PreparedImage,
        *,
        keep_correspondence: bool = False,
        timer: StageTimer | None = None,
    ) -> ColorizationOutput:
        """Colorize one prepared target from one prepared reference."""
        timer = timer or StageTimer()
        self.check_reference(reference)
        correspondence = None
        if self.colorizer.needs_correspondence:
            with timer("correspondence"):
                correspondence = self.correspond(target, reference)
        with timer("colorize"):
            ab = self.colorizer.predict_ab(target, reference, correspondence)
        with timer("convert"):
            image = lab_to_image_keep_l(target.l_full, ab)
        return ColorizationOutput(
            rgb=image,
            reference=reference.name,
            seconds=dict(timer.seconds),
            correspondence=correspondence if keep_correspondence else None,
        )

    def __call__(
        self,
        target: ImageInput,
        references: Sequence[ImageInput],
        *,
        keep_correspondence: bool = False,
    ) -> list[ColorizationOutput]:
        """One colorization of `target` per reference, in the order given."""
        if not references:
            raise ConfigError("at least one reference image is needed")
        prepared_target = self.prepare(target)
        outputs = []
        for reference in references:
            timer = StageTimer()
            prepared = self.prepare(reference, timer=timer)
            outputs.append(
                self.colorize(
                    prepared_target, prepared, keep_correspondence=keep_correspondence, timer=timer
                )
            )
        return outputs
