"""One clip's work for `chromaref video`, wherever it runs: in the CLI's process or as a Ray
task on a cluster's worker.

Clips, references and the output folder may be local paths or object-store URIs
(`s3://bucket/clips?endpoint_override=...`). A clip colorized whole is downloaded into the
worker's scratch folder; a long clip on Ray is colorized in pieces, each read by ranges
straight from its location. Each output is uploaded once complete (an object appears whole or
not at all), so the driver never carries video bytes and no shared disk is assumed. Local
outputs are written in place, atomically.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from chromaref.platform.errors import ChromarefError, ConfigError, FileError
from chromaref.platform.images import VIDEO_SUFFIXES
from chromaref.retrieval.storage import Location, download, locate, upload

if TYPE_CHECKING:  # torch loads with them: not before the CLI has set OpenMP's wait policy
    from chromaref.platform.video.clip import ClipResult, Span

CHUNK_WARMUP = 1.0  # seconds colorized before a piece, not written: carried colors settle


@dataclass(frozen=True, kw_only=True)
class VideoJob:
    """Everything one clip needs, picklable for a Ray task. Locations are absolute local paths
    or URIs (as text: a Location holds a filesystem client)."""

    source: str
    out: str
    references: tuple[str, ...]
    auto_top: int  # 0: the given references
    index: str | None
    trust_index: bool
    method: str
    model: str | None  # a colornet file (absolute) or an MLflow model URI
    tracking_uri: str | None  # the MLflow store of a model URI (absolute)
    working_size: int
    temporal: bool
    scene_cut: float
    codec: str
    crf: int
    max_frames: int | None
    chunk_seconds: float | None = None  # on Ray: pieces of about this length (None: whole)


@dataclass(frozen=True)
class JobResult:
    clip: ClipResult
    outputs: list[str]  # where the videos are: local paths or URIs


def find_clips(inputs: list[str]) -> list[str]:
    """The clips named, and those found (recursively) in the folders or prefixes named, sorted;
    as absolute paths or URIs.

    Raises:
        ConfigError: nothing to colorize, an input that does not exist or cannot be listed, or
            two clips that would share output names.
    """
    clips: list[Location] = []
    for item in inputs:
        where = locate(item)
        try:
            kind = where.kind()
            if kind == "dir":
                clips += [f for f in where.files() if _suffix(f.name) in VIDEO_SUFFIXES]
            elif kind == "file":
                clips.append(where)
        except OSError as exc:  # an unreachable store, missing credentials
            raise ConfigError(f"{item}: cannot list it ({exc})") from None
        if kind == "missing":
            raise ConfigError(f"{item}: no such file or folder")
    if not clips:
        raise ConfigError(f"no videos found in {', '.join(inputs)}")
    stems = [PurePosixPath(clip.name).stem for clip in clips]
    if len(set(stems)) != len(stems):
        twice = sorted({s for s in stems if stems.count(s) > 1})
        raise ConfigError(f"several clips are named {twice[0]}: colorize them into separate --out")
    return [str(clip) for clip in clips]


def absolute(location: str) -> str:
    """A local path made absolute (a cluster's workers run in another folder); URIs as given."""
    return location if "://" in location else str(Path(location).expanduser().resolve())


def colorize_job(
    job: VideoJob, progress: Callable[[int, int | None], None] | None = None
) -> JobResult:
    """Colorize one clip as `job` says; runs in-process or as a Ray task.

    Raises:
        ChromarefError: the clip or a reference cannot be used, or an output cannot be stored.
    """
    with tempfile.TemporaryDirectory(prefix="chromaref-video-") as scratch:
        source = _readable(locate(job.source), Path(scratch, "in"))
        out = _Outputs(job, Path(scratch, "out"))
        result = _colorize(job, source, _references(job, scratch), out.folder, progress)
        return JobResult(result, [out.keep(path) for path in result.outputs])


def colorize_in_pieces(job: VideoJob) -> JobResult:
    """Colorize one clip as Ray tasks of about `job.chunk_seconds` each, then join the pieces
    (no re-encode; the source's audio copied). Runs as a Ray task itself: a worker that dies
    costs only its piece, which Ray runs again.

    Each piece reads its span straight from the clip's location (seeking; an object in a store
    is read by ranges), warms up on the `CHUNK_WARMUP` seconds before it, and returns its
    encoded video through Ray's object store.

    Raises:
        ChromarefError: as `colorize_job`, from any piece.
    """
    import ray

    from chromaref.platform.video.clip import ClipResult, plan_spans
    from chromaref.platform.video.io import join_videos, probe_video

    source = _seekable(job)
    info = probe_video(source)
    if info.duration is None or job.max_frames is not None:
        return colorize_job(job)
    spans = plan_spans(info.duration, job.chunk_seconds or info.duration, CHUNK_WARMUP)
    if len(spans) == 1:
        return colorize_job(job)
    run_piece = ray.remote(num_cpus=1, max_retries=2)(_colorize_piece)
    start = time.perf_counter()
    pieces = ray.get([run_piece.remote(job, span) for span in spans])
    for _, _, error in pieces:
        if error is not None:
            raise ChromarefError(error)
    pieces = [piece for piece in pieces if piece[0].frames]  # a span between two frames
    with tempfile.TemporaryDirectory(prefix="chromaref-video-") as scratch:
        out = _Outputs(job, Path(scratch, "out"))
        joined = []
        for number, name in enumerate(path.name for path in pieces[0][0].outputs):
            parts = []
            for k, (_, encoded, _) in enumerate(pieces):
                parts.append(Path(scratch, f"{k:05d}-{name}"))
                parts[-1].write_bytes(encoded[number])
            join_videos(parts, out.folder / name, info, source)
            joined.append(out.keep(out.folder / name))
    frames = sum(result.frames for result, _, _ in pieces)
    return JobResult(ClipResult([], frames, time.perf_counter() - start), joined)


def _colorize_piece(job: VideoJob, span: Span) -> tuple[ClipResult | None, list[bytes], str | None]:
    """A Ray task: one span of the clip; (result with the outputs' names, their bytes, None),
    or (None, [], the error's line)."""
    try:
        with tempfile.TemporaryDirectory(prefix="chromaref-video-") as scratch:
            folder = Path(scratch, "out")
            folder.mkdir()
            references = _references(job, scratch)
            result = _colorize(job, _seekable(job), references, folder, None, span)
            encoded = [path.read_bytes() for path in result.outputs]
            result.outputs = [Path(path.name) for path in result.outputs]
            return result, encoded, None
    except ChromarefError as exc:
        return None, [], str(exc)


class _Outputs:
    """Where a job's videos are written: `--out` itself when local, else `scratch` (then
    uploaded by `keep`)."""

    def __init__(self, job: VideoJob, scratch: Path) -> None:
        self.out = locate(job.out)
        self.folder = Path(self.out.path) if self.out.is_local else scratch
        self.folder.mkdir(parents=True, exist_ok=True)

    def keep(self, path: Path) -> str:
        """The finished video at `path`, where the user asked for it."""
        if self.out.is_local:
            return str(path)
        return _publish(path, self.out.join(path.name))


def _seekable(job: VideoJob) -> Path | Location:
    """The clip where it lies: a local path, or the stored object, read by ranges (seeking)
    and never downloaded whole."""
    where = locate(job.source)
    return Path(where.path) if where.is_local else where


def _references(job: VideoJob, scratch: str) -> list[Path]:
    return [
        _readable(locate(r), Path(scratch, "refs", str(i))) for i, r in enumerate(job.references)
    ]


def _colorize(
    job: VideoJob,
    source: Path | Location,
    references: list[Path],
    folder: Path,
    progress: Callable[[int, int | None], None] | None,
    span: Span | None = None,
) -> ClipResult:
    from chromaref.cli._auto import auto_references
    from chromaref.cli._colorize import prepare_reference, reference_labels
    from chromaref.cli._model import build_pipeline
    from chromaref.platform.config import VideoConfig
    from chromaref.platform.images import LoadedImage, load_image
    from chromaref.platform.models import shared_backbones
    from chromaref.platform.video.clip import EncodeOptions, Span, colorize_clip
    from chromaref.platform.video.io import VideoWriter, probe_video
    from chromaref.retrieval.default import open_index

    with shared_backbones():  # the pipeline, the index and its first build: one backbone load
        pipeline = build_pipeline(
            job.method,
            working_size=job.working_size,
            model=job.model,
            tracking_uri=job.tracking_uri,
        )
        index = open_index(job.index, trust=job.trust_index) if job.auto_top else None
    if index is not None:
        found = auto_references(pipeline, index, job.auto_top)
        labels = [f"auto{rank}" for rank in range(1, job.auto_top + 1)]

        def anchor(frame):
            return [ref.prepared for ref in found(LoadedImage(frame, None, "RGB", None, False))]
    else:
        given = [
            prepare_reference(pipeline, load_image(path), name=path.stem) for path in references
        ]
        labels = reference_labels(references)

        def anchor(_frame):
            return [reference.prepared for reference in given]

    stem = PurePosixPath(locate(job.source).name).stem
    suffix = VideoWriter.container_for(probe_video(source))  # .mkv when audio cannot go in MP4
    return colorize_clip(
        pipeline,
        source,
        [folder / f"{stem}__{label}.{suffix}" for label in labels],
        anchor,
        reanchor_at_cuts=bool(job.auto_top),
        config=VideoConfig(temporal=job.temporal, scene_cut=job.scene_cut),
        encode=EncodeOptions(codec=job.codec, crf=job.crf),
        max_frames=job.max_frames,
        progress=progress,
        span=span or Span(),
    )


def clip_label(job: VideoJob) -> str:
    """The clip as a user names it (a URI without its store options)."""
    return job.source.split("?", 1)[0]


def _readable(where: Location, scratch: Path) -> Path:
    """A local file with `where`'s bytes: the file itself, or a copy of a stored object in
    `scratch` (named as the object, so labels and messages keep its name).

    Raises:
        FileError: the object cannot be read.
    """
    if where.is_local:
        return Path(where.path)
    scratch.mkdir(parents=True, exist_ok=True)
    local = scratch / where.name
    try:
        download(where, local)
    except OSError as exc:
        raise FileError(where.without_options(), f"cannot read it from the store ({exc})") from None
    return local


def _publish(local: Path, dest: Location) -> str:
    try:
        upload(local, dest)
    except OSError as exc:
        raise FileError(dest.without_options(), f"cannot store it ({exc})") from None
    return dest.without_options()


def _suffix(name: str) -> str:
    return PurePosixPath(name).suffix.lower()
