"""How good and how steady a colorized clip is, against its true colors, frame by frame.

- **PSNR, SSIM** per frame (RGB, `chromaref.platform.metrics`).
- **Warp error** (Lai et al. 2018): result t-1 moved onto frame t along the *true* motion
  (OpenCV DIS optical flow of the ground truth's luminance), then the mean absolute difference
  of CIELAB **ab** (the luminance is the input's, kept exactly: ab is all a colorizer changes),
  over the pixels whose forward and backward flows agree and stay inside the frame (Ruder et
  al. 2016's occlusion test). The truth's own warp error (flow error, lighting, codec noise)
  is the floor to compare against.
- **CDC** (color distribution consistency, Liu et al. 2021 after DEVC): Jensen-Shannon
  divergence (natural log) of the 256-bin histograms of each RGB channel of frames t and t+g,
  averaged over channels and frames for each gap g in 1, 2 and 4, then over the gaps.

All are streamed: a clip is fed one frame at a time and only the last few frames' planes and
histograms are kept, so memory does not grow with the clip.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from scipy.special import rel_entr

from chromaref.platform.color import gray_image, lab_image, mean_chroma
from chromaref.platform.colorizers import PreparedImage
from chromaref.platform.config import VideoConfig
from chromaref.platform.errors import UnusableReferenceError
from chromaref.platform.metrics import psnr, ssim
from chromaref.platform.pipeline import ColorizationPipeline
from chromaref.platform.video.io import read_video
from chromaref.platform.video.temporal import FrameColorizer, SceneCuts

CDC_GAPS = (1, 2, 4)
TRUTH = "truth"
MODES = {"per-frame": False, "temporal": True}  # mode name -> VideoConfig.temporal
SAMPLE_HEIGHT = 240  # rows of the frames kept for a picture


@dataclass(frozen=True)
class Motion:
    """Where each pixel of frame t was in frame t-1, and where that is to be trusted."""

    map_x: np.ndarray  # (H, W) float32
    map_y: np.ndarray
    valid: np.ndarray  # (H, W) bool: inside the frame, forward and backward flows agree

    def warp(self, planes: np.ndarray) -> np.ndarray:
        """`planes` (H, W, C) of frame t-1, moved onto frame t."""
        return cv2.remap(planes, self.map_x, self.map_y, cv2.INTER_LINEAR)


def true_motion(previous: np.ndarray, current: np.ndarray) -> Motion:
    """The motion between two ground-truth RGB frames, from their luminance (DIS flow both
    ways; a pixel whose round trip misses by more than the Ruder et al. bound is occluded)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    before, now = (cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in (previous, current))
    backward = dis.calc(now, before, None)  # t -> t-1
    forward = dis.calc(before, now, None)  # t-1 -> t
    height, width = now.shape
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x, map_y = xs + backward[..., 0], ys + backward[..., 1]
    forward_there = cv2.remap(forward, map_x, map_y, cv2.INTER_LINEAR)
    miss = ((backward + forward_there) ** 2).sum(-1)
    bound = 0.01 * ((backward**2).sum(-1) + (forward_there**2).sum(-1)) + 0.5
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    return Motion(map_x, map_y, inside & (miss <= bound))


def ab_planes(rgb: np.ndarray) -> np.ndarray:
    """CIELAB a, b of an (H, W, 3) uint8 RGB frame, (H, W, 2) float32."""
    return np.ascontiguousarray(lab_image(rgb)[..., 1:])


def warp_error(previous_ab: np.ndarray, current_ab: np.ndarray, motion: Motion) -> float:
    """Mean |ab| difference between frame t and frame t-1 carried along `motion`, over its
    valid pixels (NaN when none is valid, e.g. across a scene cut)."""
    if not motion.valid.any():
        return float("nan")
    difference = np.abs(current_ab - motion.warp(previous_ab)).mean(-1)
    return float(difference[motion.valid].mean())


def channel_histograms(rgb: np.ndarray) -> np.ndarray:
    """(3, 256) probabilities of each RGB channel's values."""
    counts = np.stack([np.bincount(rgb[..., c].ravel(), minlength=256) for c in range(3)])
    return counts / counts.sum(1, keepdims=True)


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (nats, 0..ln 2) along the last axis."""
    m = (p + q) / 2
    return (rel_entr(p, m).sum(-1) + rel_entr(q, m).sum(-1)) / 2


class ColorConsistency:
    """CDC, fed one frame at a time (keeps the last `max(gaps)` frames' histograms)."""

    def __init__(self, gaps: Sequence[int] = CDC_GAPS) -> None:
        self.gaps = tuple(gaps)
        self.recent: deque[np.ndarray] = deque(maxlen=max(self.gaps))
        self.sums = dict.fromkeys(self.gaps, 0.0)
        self.pairs = dict.fromkeys(self.gaps, 0)

    def add(self, rgb: np.ndarray) -> None:
        histograms = channel_histograms(rgb)
        for gap in self.gaps:
            if len(self.recent) >= gap:
                self.sums[gap] += float(js_divergence(self.recent[-gap], histograms).mean())
                self.pairs[gap] += 1
        self.recent.append(histograms)

    @property
    def value(self) -> float:
        """Mean over the gaps the clip was long enough for (NaN for a single frame)."""
        means = [self.sums[g] / self.pairs[g] for g in self.gaps if self.pairs[g]]
        return float(np.mean(means)) if means else float("nan")


def cdc(frames: Iterable[np.ndarray], gaps: Sequence[int] = CDC_GAPS) -> float:
    """CDC of a stream of (H, W, 3) uint8 RGB frames."""
    consistency = ColorConsistency(gaps)
    for frame in frames:
        consistency.add(frame)
    return consistency.value


@dataclass
class _Track:
    """One sequence of frames (a colorization, or the truth) being scored."""

    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    warp: list[float] = field(default_factory=list)
    consistency: ColorConsistency = field(default_factory=ColorConsistency)
    previous_ab: np.ndarray | None = None

    def add(self, rgb: np.ndarray, truth: np.ndarray | None, motion: Motion | None) -> None:
        ab = ab_planes(rgb)
        if truth is not None:
            with np.errstate(divide="ignore"):  # equal frames: infinite PSNR
                self.psnr.append(psnr(rgb, truth))
            self.ssim.append(ssim(rgb, truth))
        if motion is not None:
            self.warp.append(warp_error(self.previous_ab, ab, motion))
        self.previous_ab = ab
        self.consistency.add(rgb)

    def summary(self, per_frame: bool) -> dict[str, object]:
        found: dict[str, object] = {
            "warp_error": _mean(self.warp),
            "cdc": self.consistency.value,
        }
        if self.psnr:
            found |= {"psnr": _mean(self.psnr), "ssim": float(np.mean(self.ssim))}
        if per_frame:
            found["per_frame"] = {"psnr": self.psnr, "ssim": self.ssim, "warp_error": self.warp}
        return found


def _mean(values: list[float]) -> float:
    """Mean of the finite values: a frame equal to the truth (a fade to black) has infinite
    PSNR, a pair with no valid motion (a scene cut) no warp error; neither has an error to
    average."""
    kept = [v for v in values if np.isfinite(v)] or values
    return float(np.mean(kept)) if kept else float("nan")


class ClipScores:
    """Every metric for several colorizations of one clip and for its truth, fed one frame at
    a time; the motion is estimated once per frame, from the truth, for all of them."""

    def __init__(self, names: Iterable[str]) -> None:
        self.tracks = {name: _Track() for name in (*names, TRUTH)}
        self.previous_truth: np.ndarray | None = None

    def add(self, truth: np.ndarray, results: Mapping[str, np.ndarray]) -> None:
        """The next frame's truth and each colorization's result (all (H, W, 3) uint8 RGB)."""
        previous, self.previous_truth = self.previous_truth, truth
        motion = None if previous is None else true_motion(previous, truth)
        for name, rgb in results.items():
            self.tracks[name].add(rgb, truth, motion)
        self.tracks[TRUTH].add(truth, None, motion)

    def summary(self, *, per_frame: bool = False) -> dict[str, dict[str, object]]:
        """Means by name (the truth has no PSNR/SSIM); with the per-frame series if asked."""
        return {name: track.summary(per_frame) for name, track in self.tracks.items()}


@dataclass
class ClipEvaluation:
    scores: dict[str, dict[str, object]]  # mode or "truth" -> metric -> value
    frames: int = 0
    cuts: list[int] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(MODES, 0.0))
    samples: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)  # frame -> pictures


def first_color_frame(source: str | Path, min_chroma: float) -> np.ndarray:
    """The clip's first frame with color (a fade from black has none): the key frame a user
    would color by hand and propagate.

    Raises:
        UnusableReferenceError: no frame has color.
    """
    for frame in read_video(source):
        if mean_chroma(frame.rgb) >= min_chroma:
            return frame.rgb
    raise UnusableReferenceError(f"{source}: no frame has color to use as the reference")


def evaluate_clip(
    pipeline: ColorizationPipeline,
    source: str | Path,
    reference: PreparedImage,
    *,
    config: VideoConfig | None = None,
    max_frames: int | None = None,
    keep: Collection[int] = (),
    per_frame: bool = False,
) -> ClipEvaluation:
    """Turn a color clip gray, colorize each frame on its own and with the temporal mode
    (the same prepared frame for both), and score both and the truth, streamed.

    `keep`: frame numbers whose gray input, results and truth are kept (at most
    `SAMPLE_HEIGHT` rows) for a picture.
    """
    config = config or VideoConfig()
    colorizers = {
        mode: FrameColorizer(pipeline, reference, config.model_copy(update={"temporal": on}))
        for mode, on in MODES.items()
    }
    cuts, scores = SceneCuts(config.scene_cut), ClipScores(colorizers)
    evaluation = ClipEvaluation(scores={})
    for frame in read_video(source):
        if max_frames is not None and frame.index >= max_frames:
            break
        gray = gray_image(frame.rgb)
        target = pipeline.prepare(gray)
        cut = cuts(target)
        if cut:
            evaluation.cuts.append(frame.index)
        results = {}
        for mode, colorizer in colorizers.items():
            start = time.perf_counter()
            results[mode] = colorizer(target, cut=cut)
            evaluation.seconds[mode] += time.perf_counter() - start
        scores.add(frame.rgb, results)
        if frame.index in keep:
            pictures = {"gray": gray, **results, TRUTH: frame.rgb}
            evaluation.samples[frame.index] = {k: _small(v) for k, v in pictures.items()}
        evaluation.frames += 1
    evaluation.scores = scores.summary(per_frame=per_frame)
    return evaluation


def _small(rgb: np.ndarray) -> np.ndarray:
    scale = SAMPLE_HEIGHT / rgb.shape[0]
    if scale >= 1:
        return rgb
    size = (max(1, round(rgb.shape[1] * scale)), SAMPLE_HEIGHT)
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
