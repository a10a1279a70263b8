"""Streamed video decode and encode with PyAV: one frame in memory at a time.

`read_video` yields frames with their own timestamps (variable frame rate survives) and the
stream's rotation; `VideoWriter` encodes frames with those timestamps, copies the input's
audio packets untouched (no re-encode) and keeps the rotation as display metadata. The file
appears under its final name only when complete (`files.atomic_path`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from chromaref.platform.errors import ConfigError, FileError
from chromaref.platform.files import atomic_path

logger = logging.getLogger(__name__)

# Audio codecs an MP4 file may carry; others make the output Matroska, which takes any.
_MP4_AUDIO = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"})
_AV_ERRORS = (av.error.FFmpegError, OSError, ValueError, IndexError)


class VideoError(FileError):
    """A video cannot be read or written (corrupt, no video stream, unsupported)."""


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    frames: int | None  # as the container declares it; None when unknown
    rate: Fraction | None  # average frame rate
    time_base: Fraction
    rotation: int  # degrees, counter-clockwise, from the display matrix
    audio_codec: str | None
    codec: str


@dataclass(frozen=True)
class Frame:
    rgb: np.ndarray  # (H, W, 3) uint8, as stored (rotation is metadata, not applied)
    pts: int | None
    index: int


def probe_video(path: str | Path) -> VideoInfo:
    """What `path` holds, from its header and first frame.

    Raises:
        VideoError: not a readable video (corrupt, audio only, a still image, no frames).
    """
    with _open(path) as container:
        stream = _video_stream(container, path)
        first = next(_decoded(container, stream, path), None)
        if first is None:
            raise VideoError(path, "the video has no frames")
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        return VideoInfo(
            width=first.width,
            height=first.height,
            frames=stream.frames or None,
            rate=stream.average_rate,
            time_base=stream.time_base or Fraction(1, 90000),
            rotation=int(first.rotation or 0),
            audio_codec=audio,
            codec=stream.codec_context.name,
        )


def read_video(path: str | Path) -> Iterator[Frame]:
    """Every frame of the first video stream, in presentation order, decoded as RGB.

    Raises:
        VideoError: the file is not a video, or is damaged beyond a frame's worth.
    """
    with _open(path) as container:
        stream = _video_stream(container, path)
        for index, frame in enumerate(_decoded(container, stream, path)):
            yield Frame(frame.to_ndarray(format="rgb24"), frame.pts, index)


def _open(path: str | Path):
    try:
        return av.open(str(path), mode="r")
    except _AV_ERRORS as exc:
        raise VideoError(path, f"not a readable video ({_reason(exc)})") from None


def _video_stream(container, path):
    if not container.streams.video:
        raise VideoError(path, "has no video stream (an audio file?)")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    if stream.codec_context.name in {"png", "mjpeg", "bmp", "webp", "tiff"} and (
        stream.frames in (0, 1)
    ):
        raise VideoError(path, "is a still image, not a video; use `chromaref colorize`")
    return stream


def _decoded(container, stream, path) -> Iterator[av.VideoFrame]:
    try:
        yield from container.decode(stream)
    except _AV_ERRORS as exc:
        raise VideoError(path, f"cannot be decoded ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__


class VideoWriter:
    """Encode frames into `path` (H.264 by default), copying `source`'s audio stream.

    Use as a context manager; the file is renamed into place when the block succeeds and
    deleted when it fails or is interrupted.
    """

    def __init__(
        self,
        path: str | Path,
        info: VideoInfo,
        *,
        source: str | Path | None = None,
        codec: str = "libx264",
        crf: int = 18,
        preset: str = "veryfast",
    ) -> None:
        if codec not in av.codecs_available:
            raise ConfigError(f"video codec {codec!r} is not available in this PyAV build")
        self.path, self.info, self.source = Path(path), info, source
        self.codec, self.crf, self.preset = codec, crf, preset
        self._stack = ExitStack()

    @staticmethod
    def container_for(info: VideoInfo) -> str:
        """ "mp4", or "mkv" when the audio to copy cannot go into MP4 (e.g. PCM)."""
        return "mkv" if info.audio_codec and info.audio_codec not in _MP4_AUDIO else "mp4"

    def __enter__(self) -> VideoWriter:
        fmt = "matroska" if self.path.suffix == ".mkv" else "mp4"
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._out = self._stack.enter_context(av.open(str(tmp), mode="w", format=fmt))
        info = self.info
        rate = info.rate or Fraction(25)
        self._stream = self._out.add_stream(self.codec, rate=rate)
        self._stream.width, self._stream.height = info.width, info.height
        # encode in the source's time base, not 1/rate: variable-rate timestamps stay exact
        self._stream.time_base = self._stream.codec_context.time_base = info.time_base
        even = info.width % 2 == 0 and info.height % 2 == 0
        self._stream.pix_fmt = "yuv420p" if even else "yuv444p"  # 4:2:0 needs even sides
        if self.codec == "libx264":
            self._stream.options = {"crf": str(self.crf), "preset": self.preset}
        if info.rotation:
            self._stream.set_display_rotation(info.rotation)
        self._audio = self._copy_audio_stream()
        self._next_pts, self._end_s = 0, 0.0
        self.preview = False  # set when the caller stops before the clip's end
        return self

    def _copy_audio_stream(self):
        if self.source is None or self.info.audio_codec is None:
            return None
        self._source = self._stack.enter_context(av.open(str(self.source), mode="r"))
        return self._out.add_stream_from_template(self._source.streams.audio[0])

    def write(self, rgb: np.ndarray, pts: int | None) -> None:
        """Encode one frame at its source timestamp; a missing or out-of-order one (AVI files
        guess timestamps from packets) becomes the next tick after the previous frame."""
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = pts if pts is not None and pts >= self._next_pts else self._next_pts
        frame.time_base = self.info.time_base
        self._next_pts = frame.pts + 1
        self._out.mux(self._stream.encode(frame))
        self._end_s = float(frame.pts * self.info.time_base + 1 / (self.info.rate or 25))

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:  # the caller failed: close and delete, never rename
            return self._stack.__exit__(exc_type, exc, tb)
        with self._stack:  # a failure while finishing also deletes instead of renaming
            self._out.mux(self._stream.encode(None))  # flush the encoder
            if self._audio is not None:
                self._mux_audio()
        return False

    def _mux_audio(self) -> None:
        """The source's audio packets as they are: all of them for a whole clip, those up to
        the last frame's end for a `preview` (a `--max-frames` run)."""
        source_stream = self._source.streams.audio[0]
        for packet in self._source.demux(source_stream):
            if packet.dts is None:
                continue
            start = float(packet.pts * packet.time_base) if packet.pts is not None else 0.0
            if self.preview and start >= self._end_s:
                break
            packet.stream = self._audio
            self._out.mux(packet)
