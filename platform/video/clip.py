"""One clip in, one colorized clip per reference out, streamed frame by frame.

Memory stays flat in the clip's length: a frame is decoded, prepared once (shared by every
reference's output), colorized and encoded before the next is read. References are chosen by
`anchor(frame_rgb)` at the first frame and, when `reanchor_at_cuts`, again at every scene cut
(`--auto`); given references anchor the whole clip and cuts only stop colors carrying over.

A `Span` makes one piece of a long clip (a Ray task's share, `join_videos` puts the pieces
back together): its frames are written without audio, after a warm-up of the frames before
it, colorized but not written, so colors carried from frame to frame arrive as they would in
one run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chromaref.platform.colorizers import PreparedImage
from chromaref.platform.config import VideoConfig
from chromaref.platform.errors import ConfigError
from chromaref.platform.pipeline import ColorizationPipeline
from chromaref.platform.video.io import (
    VideoError,
    VideoInfo,
    VideoSource,
    VideoWriter,
    probe_video,
    read_video,
)
from chromaref.platform.video.temporal import FrameColorizer, SceneCuts

Anchor = Callable[[np.ndarray], list[PreparedImage]]
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class EncodeOptions:
    codec: str = "libx264"
    crf: int = 18
    preset: str = "veryfast"


@dataclass(frozen=True)
class Span:
    """Frames from `start` up to `stop` (seconds; None: the end) are written; the `warmup`
    seconds before `start` are colorized first and not written."""

    start: float = 0.0
    stop: float | None = None
    warmup: float = 0.0

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.stop is None


def plan_spans(duration: float, seconds: float, warmup: float) -> list[Span]:
    """A clip of `duration` seconds cut into about `seconds`-long spans (at least one)."""
    count = max(1, round(duration / seconds))
    cuts = [duration * i / count for i in range(count)]
    return [
        Span(start, None if i == count - 1 else cuts[i + 1], warmup if i else 0.0)
        for i, start in enumerate(cuts)
    ]


@dataclass
class ClipResult:
    outputs: list[Path]
    frames: int = 0
    seconds: float = 0.0
    cuts: list[int] = field(default_factory=list)  # frame numbers that started a new scene

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def fixed_anchor(references: Sequence[PreparedImage]) -> Anchor:
    """The same references for every scene."""
    chosen = list(references)
    return lambda _frame: chosen


def colorize_clip(
    pipeline: ColorizationPipeline,
    source: VideoSource,
    outputs: Sequence[Path],
    anchor: Anchor,
    *,
    reanchor_at_cuts: bool = False,
    config: VideoConfig | None = None,
    encode: EncodeOptions | None = None,
    max_frames: int | None = None,
    progress: Progress | None = None,
    span: Span = Span(),
) -> ClipResult:
    """Colorize `source` into `outputs` (one per reference `anchor` returns, in order).

    Every output keeps the source's frame timestamps, size, rotation metadata and audio
    (copied; none for a `span` that is not the whole clip). Each file appears only when
    complete; on any error or interrupt none is left.

    Raises:
        VideoError: `source` is not a readable video.
        ConfigError: `anchor` returned a different number of references than `outputs`.
        UnusableReferenceError: a reference has no color.
    """
    if max_frames is not None and max_frames < 1:
        raise ConfigError(f"max_frames must be at least 1, got {max_frames}")
    config, encode = config or VideoConfig(), encode or EncodeOptions()
    info = probe_video(source)
    total = min(filter(None, (info.frames, max_frames)), default=None) if span.whole else None
    result, start = ClipResult(outputs=list(outputs)), time.perf_counter()
    cuts, colorizers = SceneCuts(config.scene_cut), []
    audio = source if span.whole else None
    with ExitStack() as stack:
        writers = [stack.enter_context(_writer(path, info, audio, encode)) for path in outputs]
        for frame in read_video(source, start=max(0.0, span.start - span.warmup)):
            seconds = None if frame.pts is None else float(frame.pts * info.time_base)
            if max_frames is not None and result.frames >= max_frames:
                for writer in writers:
                    writer.preview = True
                break
            if span.stop is not None and seconds is not None and seconds >= span.stop:
                break
            target = pipeline.prepare(frame.rgb)
            cut = cuts(target)
            if cut:
                result.cuts.append(frame.index)
            if not colorizers or (cut and reanchor_at_cuts):
                references = anchor(frame.rgb)
                colorizers = _anchored(pipeline, colorizers, references, len(writers), config)
            warming = seconds is not None and seconds < span.start
            for colorizer, writer in zip(colorizers, writers, strict=True):
                colorized = colorizer(target, cut=cut)
                if not warming:
                    writer.write(colorized, frame.pts)
            if warming:
                continue
            result.frames += 1
            if progress is not None:
                progress(result.frames, total)
        if span.whole and not result.frames:  # the writers delete their files on the way out
            raise VideoError(source, "no frame could be decoded, so no video is written")
    result.seconds = time.perf_counter() - start
    return result


def _writer(
    path: Path, info: VideoInfo, source: VideoSource | None, encode: EncodeOptions
) -> VideoWriter:
    return VideoWriter(
        path, info, source=source, codec=encode.codec, crf=encode.crf, preset=encode.preset
    )


def _anchored(
    pipeline: ColorizationPipeline,
    colorizers: list[FrameColorizer],
    references: list[PreparedImage],
    wanted: int,
    config: VideoConfig,
) -> list[FrameColorizer]:
    """Colorizers anchored on `references`: new ones at the start, re-anchored ones after."""
    if len(references) != wanted:
        raise ConfigError(f"{len(references)} references for {wanted} output videos")
    if not colorizers:
        return [FrameColorizer(pipeline, reference, config) for reference in references]
    for colorizer, reference in zip(colorizers, references, strict=True):
        colorizer.set_reference(reference)
    return colorizers
