"""Test clips made from real photos: a window panning across a bundled photo at a known speed
(so the true motion between frames is known), written with PyAV, optionally with an audio
track, a rotation, odd sizes or irregular timestamps."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

PAN_PX = 3  # the window moves this many pixels right per frame
TICKS = 1024  # time-base ticks per frame


def pan_frames(photo: np.ndarray, count: int, size: tuple[int, int]) -> list[np.ndarray]:
    """`count` crops of `size` (width, height), each `PAN_PX` right of the previous."""
    width, height = size
    top = (photo.shape[0] - height) // 2
    return [photo[top : top + height, i * PAN_PX : i * PAN_PX + width].copy() for i in range(count)]


def write_clip(
    path: Path,
    frames: list[np.ndarray],
    *,
    rate: int = 12,
    audio: bool = False,
    rotation: int = 0,
    pts: list[int] | None = None,
) -> Path:
    """Encode `frames` (RGB) as H.264 in MP4 (4:4:4 for odd sizes), with a 440 Hz AAC tone as
    long as the video when `audio`, a display rotation, and explicit timestamps (in 1/rate
    ticks) when `pts` is given."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        # a fine time base, as real files have (x264's B-frame timestamps need room)
        stream.time_base = stream.codec_context.time_base = Fraction(1, rate * TICKS)
        stream.options = {"crf": "12", "preset": "veryfast"}
        if rotation:
            stream.set_display_rotation(rotation)
        tone = container.add_stream("aac", rate=44100, layout="mono") if audio else None
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = (pts[index] if pts else index) * TICKS
            frame.time_base = stream.time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if tone is not None:
            _write_tone(container, tone, seconds=((pts[-1] if pts else len(frames)) + 1) / rate)
    return path


def _write_tone(container, stream, seconds: float, sample_rate: int = 44100) -> None:
    samples = np.sin(2 * np.pi * 440 * np.arange(int(seconds * sample_rate)) / sample_rate)
    samples = (samples * 0.3).astype(np.float32)[None]
    frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=stream.layout.name)
    frame.sample_rate, frame.pts = sample_rate, 0
    container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def decode_all(path: Path) -> tuple[list[np.ndarray], list[float]]:
    """Every frame as RGB, and its presentation time in seconds."""
    frames, times = [], []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.pts * frame.time_base))
    return frames, times
