"""Streamed video decode and encode with PyAV: one frame in memory at a time.

`read_video` yields frames with their own timestamps (variable frame rate survives) and the
stream's rotation; `VideoWriter` encodes frames with those timestamps, copies the input's
audio packets untouched (no re-encode) and keeps the rotation as display metadata. The file
appears under its final name only when complete (`files.atomic_path`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Protocol

import av
import numpy as np

from chromaref.platform.errors import ConfigError, FileError
from chromaref.platform.files import atomic_path

logger = logging.getLogger(__name__)

# Encoders whose quality is set by a constant rate factor (0..51).
_CRF_CODECS = {"libx264", "libx265"}
# Audio codecs an MP4 file may carry; others make the output Matroska, which takes any.
_MP4_AUDIO = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"})
_AV_ERRORS = (av.error.FFmpegError, OSError, ValueError, IndexError)


class Openable(Protocol):
    """A file somewhere else (an object in a store) that opens as a seekable binary file."""

    def open(self) -> BinaryIO: ...


VideoSource = str | Path | Openable


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
    duration: float | None = None  # seconds, as the container declares it


@dataclass(frozen=True)
class Frame:
    rgb: np.ndarray  # (H, W, 3) uint8, as stored (rotation is metadata, not applied)
    pts: int | None
    index: int


def probe_video(path: VideoSource) -> VideoInfo:
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
            duration=_duration(container, stream),
        )


def _duration(container, stream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration else None


def read_video(path: VideoSource, start: float = 0.0) -> Iterator[Frame]:
    """Every frame of the first video stream, in presentation order, decoded as RGB; with
    `start` (seconds), those from that time on, reached by seeking to the key frame before it
    (indexes then count from the first frame yielded).

    Raises:
        VideoError: the file is not a video, or is damaged beyond a frame's worth.
    """
    with _open(path) as container:
        stream = _video_stream(container, path)
        frames = _decoded(container, stream, path)
        if start > 0:
            _seek(container, stream, start, path)
            frames = (f for f in frames if f.pts is None or f.pts * stream.time_base >= start)
        for index, frame in enumerate(frames):
            yield Frame(frame.to_ndarray(format="rgb24"), frame.pts, index)


def _seek(container, stream, seconds: float, path) -> None:
    try:
        container.seek(int(seconds / stream.time_base), stream=stream, backward=True)
    except _AV_ERRORS as exc:
        raise VideoError(path, f"cannot seek to {seconds:.2f} s ({_reason(exc)})") from None


@contextmanager
def _open(path: VideoSource) -> Iterator[av.container.InputContainer]:
    """The container, and the file it reads when `path` is `Openable` (closed with it)."""
    with ExitStack() as stack:
        target = str(path) if isinstance(path, (str, Path)) else stack.enter_context(path.open())
        try:
            container = av.open(target, mode="r")
        except _AV_ERRORS as exc:
            raise VideoError(path, f"not a readable video ({_reason(exc)})") from None
        with container:
            yield container


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
    """The error's own words, on one line, without the file name (the message has it)."""
    text = getattr(exc, "strerror", None) if isinstance(exc, av.error.FFmpegError) else None
    return " ".join((text or str(exc)).split())[:160] or type(exc).__name__


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
        source: VideoSource | None = None,
        codec: str = "libx264",
        crf: int = 18,
        preset: str = "veryfast",
    ) -> None:
        try:
            encoder = av.Codec(codec, "w")
        except ValueError:  # unknown, or decoding only
            raise ConfigError(f"video codec {codec!r} has no encoder in this PyAV build") from None
        if encoder.type != "video":
            raise ConfigError(f"{codec!r} is an {encoder.type} codec, not a video one")
        if codec in _CRF_CODECS and not 0 <= crf <= 51:
            raise ConfigError(f"crf must be 0..51 for {codec}, got {crf}")
        self.path, self.info, self.source = Path(path), info, source
        self.codec, self.crf, self.preset = codec, crf, preset
        self._formats = {f.name for f in encoder.video_formats or ()}
        self._stack = ExitStack()

    @staticmethod
    def container_for(info: VideoInfo) -> str:
        """ "mp4", or "mkv" when the audio to copy cannot go into MP4 (e.g. PCM)."""
        return "mkv" if info.audio_codec and info.audio_codec not in _MP4_AUDIO else "mp4"

    def __enter__(self) -> VideoWriter:
        try:
            self._open()
        except BaseException as exc:  # a failure, so the temporary file is deleted, not renamed
            self._stack.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def _open(self) -> None:
        fmt = "matroska" if self.path.suffix == ".mkv" else "mp4"
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._out = self._stack.enter_context(av.open(str(tmp), mode="w", format=fmt))
        info = self.info
        rate = info.rate or Fraction(25)
        try:
            self._stream = self._out.add_stream(self.codec, rate=rate)
        except ValueError as exc:  # e.g. "'mp4' format does not support 'prores' codec"
            raise ConfigError(f"codec {self.codec!r}: {_reason(exc)}") from None
        self._stream.width, self._stream.height = info.width, info.height
        # encode in the source's time base, not 1/rate: variable-rate timestamps stay exact
        self._stream.time_base = self._stream.codec_context.time_base = info.time_base
        self._stream.pix_fmt = self._pixel_format()
        if self.codec in _CRF_CODECS:
            self._stream.options = {"crf": str(self.crf), "preset": self.preset}
        if info.rotation:
            self._stream.set_display_rotation(info.rotation)
        self._audio = self._copy_audio_stream()
        self._next_pts, self._end_s = 0, 0.0
        self.preview = False  # set when the caller stops before the clip's end

    def _pixel_format(self) -> str:
        """4:2:0 where the sides are even (it needs them), else 4:4:4; else what the encoder
        takes (e.g. RGB for PNG)."""
        even = self.info.width % 2 == 0 and self.info.height % 2 == 0
        wanted = ("yuv420p", "yuv444p") if even else ("yuv444p",)
        fallback = ("yuv444p", "rgb24", "yuv420p")
        choices = [f for f in (*wanted, *fallback) if not self._formats or f in self._formats]
        return choices[0] if choices else wanted[0]

    def _encode(self, frame: av.VideoFrame | None) -> None:
        try:
            self._out.mux(self._stream.encode(frame))
        except OSError:  # the disk (full, gone), not the codec
            raise
        except av.error.FFmpegError as exc:  # e.g. a codec that refuses this size or format
            raise ConfigError(
                f"codec {self.codec!r} cannot encode this {self.info.width}x{self.info.height} "
                f"video ({_reason(exc)}); the default libx264 takes any size"
            ) from None

    def _copy_audio_stream(self):
        if self.source is None or self.info.audio_codec is None:
            return None
        self._source = self._stack.enter_context(_open(self.source))
        return self._out.add_stream_from_template(self._source.streams.audio[0])

    def write(self, rgb: np.ndarray, pts: int | None) -> None:
        """Encode one frame at its source timestamp; a missing or out-of-order one (AVI files
        guess timestamps from packets) becomes the next tick after the previous frame."""
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = pts if pts is not None and pts >= self._next_pts else self._next_pts
        frame.time_base = self.info.time_base
        self._next_pts = frame.pts + 1
        self._encode(frame)
        self._end_s = float(frame.pts * self.info.time_base + 1 / (self.info.rate or 25))

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:  # the caller failed: close and delete, never rename
            return self._stack.__exit__(exc_type, exc, tb)
        with self._stack:  # a failure while finishing also deletes instead of renaming
            self._encode(None)  # flush the encoder
            if self._audio is not None:
                self._mux_audio()
        return False

    def _mux_audio(self) -> None:
        """The source's audio: all of it for a whole clip, up to the last frame's end for a
        `preview` (a `--max-frames` run)."""
        _copy_audio(self._source, self._out, self._audio, self._end_s if self.preview else None)


def join_videos(
    parts: Sequence[str | Path], path: str | Path, info: VideoInfo, source: VideoSource
) -> None:
    """Concatenate `parts` (consecutive pieces of one clip, encoded by `VideoWriter` with the
    source's timestamps and no audio) into `path` without re-encoding, with `source`'s audio
    copied and its rotation kept; the file appears only when complete.

    Raises:
        VideoError: a part cannot be read, or the parts' timestamps do not follow each other.
    """
    path = Path(path)
    with ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(path))
        fmt = "matroska" if path.suffix == ".mkv" else "mp4"
        out = stack.enter_context(av.open(str(tmp), mode="w", format=fmt))
        inputs = [stack.enter_context(_open(part)) for part in parts]
        video = out.add_stream_from_template(_video_stream(inputs[0], parts[0]))
        if info.rotation:
            video.set_display_rotation(info.rotation)
        audio = None
        if info.audio_codec is not None:
            original = stack.enter_context(_open(source))
            audio = out.add_stream_from_template(original.streams.audio[0])
        for part, container in zip(parts, inputs, strict=True):
            try:
                for packet in container.demux(container.streams.video[0]):
                    if packet.dts is not None:  # not the demuxer's empty end-of-stream packet
                        packet.stream = video
                        out.mux(packet)
            except _AV_ERRORS as exc:
                raise VideoError(part, f"cannot be joined ({_reason(exc)})") from None
        if audio is not None:
            _copy_audio(original, out, audio, None)


def _copy_audio(source, out, stream, end_s: float | None) -> None:
    """`source`'s audio packets as they are (no re-encode), those starting before `end_s`."""
    for packet in source.demux(source.streams.audio[0]):
        if packet.dts is None:
            continue
        start = float(packet.pts * packet.time_base) if packet.pts is not None else 0.0
        if end_s is not None and start >= end_s:
            break
        packet.stream = stream
        out.mux(packet)
