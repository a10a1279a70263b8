"""One clip's work for `chromaref video`, wherever it runs: in the CLI's process or as a Ray
task on a cluster's worker.

Clips, references and the output folder may be local paths or object-store URIs
(`s3://bucket/clips?endpoint_override=...`). The worker that colorizes a clip reads its inputs
from the store into a scratch folder and uploads each output once it is complete (an object
appears whole or not at all), so the driver never carries video bytes and no shared disk is
assumed. Local outputs are written in place, atomically, as before.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from chromaref.platform.errors import ConfigError, FileError
from chromaref.platform.video.clip import ClipResult
from chromaref.retrieval.storage import Location, download, locate, upload

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
)


@dataclass(frozen=True)
class VideoJob:
    """Everything one clip needs, picklable for a Ray task. Locations are absolute local paths
    or URIs (as text: a Location holds a filesystem client)."""

    source: str
    out: str
    references: tuple[str, ...]
    auto_top: int  # 0: the given references
    index: str | None
    trust_index: bool
    working_size: int
    temporal: bool
    scene_cut: float
    codec: str
    crf: int
    max_frames: int | None


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
    out = locate(job.out)
    with tempfile.TemporaryDirectory(prefix="chromaref-video-") as scratch:
        source = _readable(locate(job.source), Path(scratch, "in"))
        references = [
            _readable(locate(r), Path(scratch, "refs", str(i)))
            for i, r in enumerate(job.references)
        ]
        folder = Path(out.path) if out.is_local else Path(scratch, "out")
        folder.mkdir(parents=True, exist_ok=True)
        result = _colorize(job, source, references, folder, progress)
        if out.is_local:
            return JobResult(result, [str(path) for path in result.outputs])
        return JobResult(result, [_publish(path, out.join(path.name)) for path in result.outputs])


def _colorize(
    job: VideoJob,
    source: Path,
    references: list[Path],
    folder: Path,
    progress: Callable[[int, int | None], None] | None,
) -> ClipResult:
    from chromaref.cli._auto import auto_references
    from chromaref.cli._colorize import prepare_reference, reference_labels
    from chromaref.platform.config import MatchingConfig, PipelineConfig, VideoConfig
    from chromaref.platform.images import LoadedImage, load_image
    from chromaref.platform.models import shared_backbones
    from chromaref.platform.pipeline import ColorizationPipeline
    from chromaref.platform.video.clip import EncodeOptions, colorize_clip
    from chromaref.platform.video.io import VideoWriter, probe_video
    from chromaref.retrieval.default import open_index

    with shared_backbones():  # the pipeline, the index and its first build: one backbone load
        pipeline = ColorizationPipeline(
            PipelineConfig(matching=MatchingConfig(working_size=job.working_size))
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
    )


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
