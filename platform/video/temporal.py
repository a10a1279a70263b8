"""Temporal colorization: the reference anchors the colors, the previous result keeps them.

For each frame, the training-free colorizer's data term (the reference chroma warped by the
similarity sub-net, trusted by match confidence) gains a second source: the previous frame's
data term and its confidence, carried by optical flow (OpenCV DIS, current -> previous, at
the working size) and kept at `temporal_weight` (< 1) times that confidence where the flow
holds (the carried luminance agrees). Two weighted data terms are one term at their weighted
mean with the summed weight, so the evidence of past frames decays geometrically along the
motion and the same edge-aware solver smooths each frame once. Carrying the evidence rather
than the previous smoothed result keeps colors from drifting: a smoothed result fed back as
data is smoothed again every frame, and its errors compound. The previous result itself is a
third, weak source (`hold`): it steadies what the reference matches poorly, where there is
little evidence to carry. Where the flow fails (occlusions, new content) the reference takes
over. A jump of the luminance histogram is a scene cut: nothing is carried across it (the
caller may also change the reference there).

With the trained colorizer, that temporal grid ab is the base its residual ColorNet corrects
(where a still image gives it the frame's own training-free ab), so the net sees the carried
colors; its output is not carried itself. Measured on the two real clips of
`benchmarks.video` (60 frames, each from its key frame and from a frame three quarters in),
also carrying the net's output (trusted 0.25 or 1 times the flow's agreement) lowered warp
error but cost PSNR (an experiment, not a committed benchmark: trust 0.25 cost 0.02-0.17 dB,
trust 1 cost 0.09-0.61 dB over the four clip and reference pairs), so the chain of carried
colors stays training-free. A plain (not residual) ColorNet reads no base, so carried colors
cannot reach it: its frames are colorized on their own (no flow is computed), and a warning
says so.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from chromaref.platform.color import lab_to_image_keep_l
from chromaref.platform.colorizers import PreparedImage
from chromaref.platform.colorizers.trained import TrainedColorizer, upsample_grid_ab
from chromaref.platform.colorizers.training_free import match_confidence
from chromaref.platform.config import VIDEO_COLORIZERS, VideoConfig
from chromaref.platform.errors import ConfigError
from chromaref.platform.filters import guided_upsample, weighted_least_squares
from chromaref.platform.pipeline import ColorizationPipeline

HISTOGRAM_BINS = 64
logger = logging.getLogger(__name__)


def luminance_histogram(l_work: Tensor) -> Tensor:
    """Normalised histogram of L (0..100): what a scene cut changes at once."""
    hist = torch.histc(l_work.float(), bins=HISTOGRAM_BINS, min=0.0, max=100.0)
    return hist / hist.sum().clamp_min(1.0)


class SceneCuts:
    """Flags a frame whose luminance histogram jumps from the previous frame's (L1 distance
    over `threshold`, of at most 2): a new shot, where no color may be carried over."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.histogram: Tensor | None = None

    def __call__(self, target: PreparedImage) -> bool:
        histogram, previous = luminance_histogram(target.l_work), self.histogram
        self.histogram = histogram
        return previous is not None and float((histogram - previous).abs().sum()) > self.threshold


class FrameColorizer:
    """Colorizes the frames of one clip, in order, from one prepared reference at a time.

    >>> frames = FrameColorizer(pipeline, pipeline.prepare(reference_rgb, full_l=False))
    >>> rgb = frames(pipeline.prepare(frame_rgb))   # then the next frame, and so on
    """

    def __init__(
        self,
        pipeline: ColorizationPipeline,
        reference: PreparedImage,
        config: VideoConfig | None = None,
    ) -> None:
        """
        Raises:
            ConfigError: the pipeline's colorizer does not match frames to the reference.
            UnusableReferenceError: `reference` has no color to transfer.
        """
        if pipeline.config.colorizer not in VIDEO_COLORIZERS:
            raise ConfigError(
                f"video colorization matches every frame to the reference: use the "
                f"{' or '.join(VIDEO_COLORIZERS)} colorizer, not {pipeline.config.colorizer}"
            )
        self.pipeline = pipeline
        self.config = config or VideoConfig()
        self.propagation = pipeline.config.propagation
        colorizer = pipeline.colorizer
        self.trained = colorizer if isinstance(colorizer, TrainedColorizer) else None
        if self.trained is not None and not self.trained.net.config.residual:
            if self.config.temporal:  # carrying colors it never reads would only cost time
                meta = self.trained.net.meta
                logger.warning(
                    "the model (sha256 %s) is not a residual ColorNet: it does not read the "
                    "colors carried from frame to frame, so its frames are colorized on their own",
                    meta.sha256[:12],
                )
            self.config = self.config.model_copy(update={"temporal": False})
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        # (L working copy, on the grid: the data term's ab and confidence, the result's ab)
        self.previous: tuple[Tensor, Tensor] | None = None
        self.set_reference(reference)

    def set_reference(self, reference: PreparedImage) -> None:
        """Anchor the following frames on `reference` (e.g. another one after a scene cut).

        Raises:
            UnusableReferenceError: it has no color to transfer.
        """
        self.pipeline.check_reference(reference)
        self.reference = reference

    @torch.inference_mode()
    def __call__(self, target: PreparedImage, *, cut: bool = False) -> np.ndarray:
        """The next frame, colorized at its own size with its exact luminance; after a `cut`
        nothing is carried from the previous frame."""
        correspondence = self.pipeline.correspond(target, self.reference)
        data = correspondence.warped_ab
        confidence = match_confidence(correspondence.similarity, self.propagation)
        grid = correspondence.grid_size
        previous = None if cut or not self.config.temporal else self.previous
        held = None
        if previous is not None and previous[0].shape == target.l_work.shape:
            carried, agreement = self._carried(target.l_work, grid)
            data, confidence = _blend(
                (data, confidence),
                (carried[:, :2], self.config.temporal_weight * carried[:, 2:3] * agreement),
            )
            held = (carried[:, 3:], self.config.hold * agreement)
        evidence = torch.cat([data, confidence], dim=1)
        if held is not None:
            data, confidence = _blend((data, confidence), held)
        prop = self.propagation
        l_grid = F.adaptive_avg_pool2d(target.l_work, grid)
        ab_grid = weighted_least_squares(
            data,
            confidence,
            l_grid,
            smoothness=prop.smoothness,
            sigma=prop.edge_sigma,
            prior=prop.gray_prior,
            iterations=prop.iterations,
        )
        self.previous = (target.l_work, torch.cat([evidence, ab_grid], dim=1))
        if self.trained is not None:
            ab_grid = self.trained.grid_ab(target, correspondence, base_ab=ab_grid)
            ab = upsample_grid_ab(ab_grid, target.l_work, target.l_full, self.trained.config)
        else:
            ab = guided_upsample(
                ab_grid,
                target.l_work,
                target.l_full,
                radius=prop.upsample_radius,
                eps=prop.upsample_eps,
            )
        return lab_to_image_keep_l(target.l_full, ab)

    def _carried(self, l_work: Tensor, grid: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """The previous frame's evidence (ab, confidence) and result (ab) moved onto this frame
        by optical flow, and the flow's agreement in each grid cell (high where the carried
        luminance matches this frame's), all on the grid."""
        previous_l, state = self.previous
        current = _as_uint8(l_work)
        flow = self.flow.calc(current, _as_uint8(previous_l), None)  # where each pixel was
        height, width = current.shape
        xs, ys = np.meshgrid(
            np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
        )
        map_x, map_y = xs + flow[..., 0], ys + flow[..., 1]
        state_work = F.interpolate(state, size=(height, width), mode="bilinear")
        planes = [
            cv2.remap(plane, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            for plane in (*state_work[0].cpu().numpy(), previous_l[0, 0].cpu().numpy())
        ]
        carried = F.adaptive_avg_pool2d(torch.from_numpy(np.stack(planes[:-1]))[None], grid)
        error = (torch.from_numpy(planes[-1]) - l_work[0, 0].cpu()).abs()
        inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
        agreement = torch.exp(-((error / self.config.flow_sigma) ** 2)) * torch.from_numpy(inside)
        agreement = F.adaptive_avg_pool2d(agreement[None, None], grid)
        return carried.to(l_work), agreement.to(l_work)


def _blend(*terms: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """Weighted data terms (ab, weight) as one: their weighted mean, with the summed weight."""
    total = sum(weight for _, weight in terms)
    mean = sum(ab * weight for ab, weight in terms) / total.clamp_min(1e-6)
    return mean, total


def _as_uint8(l_work: Tensor) -> np.ndarray:
    """L (0..100) of a working copy as the 8-bit image DIS flow takes."""
    return (l_work[0, 0] * 2.55).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
