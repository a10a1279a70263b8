"""`chromaref video`: colorize whole clips, one output video per reference, without flicker.

    chromaref video old.mp4 -r ref.jpg --out out/           # colors anchored on ref.jpg
    chromaref video old.mp4 --auto --top 2 --out out/       # references retrieved per scene
    chromaref video clips/ -r ref.jpg --out out/ --address auto   # one Ray task per clip

Each output keeps the clip's frames, timestamps, size, rotation and audio (copied). A clip that
cannot be read is skipped with one line (exit 1); outputs appear only when complete.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from chromaref.cli._common import EXIT_PARTIAL, console, friendly_errors, setup_logging
from chromaref.platform.config import MatchingConfig
from chromaref.platform.errors import ChromarefError, ConfigError

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
)


@dataclass(frozen=True)
class VideoJob:
    """Everything one clip needs, picklable for a Ray task."""

    source: Path
    out: Path
    references: tuple[Path, ...]
    auto_top: int  # 0: the given references
    index: str | None
    trust_index: bool
    working_size: int
    temporal: bool
    scene_cut: float
    codec: str
    crf: int
    max_frames: int | None


def find_clips(inputs: list[Path]) -> list[Path]:
    """The clips named, and those found (recursively) in the folders named, sorted.

    Raises:
        ConfigError: nothing to colorize, or two clips that would share output names.
    """
    clips: list[Path] = []
    for item in inputs:
        if item.is_dir():
            clips += sorted(p for p in item.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
        elif item.exists():
            clips.append(item)
        else:
            raise ConfigError(f"{item}: no such file or folder")
    if not clips:
        raise ConfigError(f"no videos found in {', '.join(map(str, inputs))}")
    stems = [clip.stem for clip in clips]
    if len(set(stems)) != len(stems):
        twice = sorted({s for s in stems if stems.count(s) > 1})
        raise ConfigError(f"several clips are named {twice[0]}: colorize them into separate --out")
    return clips


def output_paths(job: VideoJob, labels: list[str]) -> list[Path]:
    """`<clip>__<label>.mp4` (or .mkv when the clip's audio cannot go into MP4)."""
    from chromaref.platform.video.io import VideoWriter, probe_video

    suffix = VideoWriter.container_for(probe_video(job.source))
    return [job.out / f"{job.source.stem}__{label}.{suffix}" for label in labels]


def colorize_job(job: VideoJob, progress: Callable[[int, int | None], None] | None = None):
    """Colorize one clip as `job` says; runs in-process or as a Ray task.

    Returns the `ClipResult` (outputs, frames, seconds, scene cuts).
    """
    from chromaref.cli._auto import auto_references
    from chromaref.cli._colorize import prepare_reference, reference_labels
    from chromaref.platform.config import PipelineConfig, VideoConfig
    from chromaref.platform.images import LoadedImage, load_image
    from chromaref.platform.models import shared_backbones
    from chromaref.platform.pipeline import ColorizationPipeline
    from chromaref.platform.video.clip import EncodeOptions, colorize_clip
    from chromaref.retrieval.default import open_index

    with shared_backbones():  # the pipeline, the index and its first build: one backbone load
        pipeline = ColorizationPipeline(
            PipelineConfig(matching=MatchingConfig(working_size=job.working_size))
        )
        index = open_index(job.index, trust=job.trust_index) if job.auto_top else None
    if index is not None:
        source = auto_references(pipeline, index, job.auto_top)
        labels = [f"auto{rank}" for rank in range(1, job.auto_top + 1)]

        def anchor(frame):
            found = source(LoadedImage(frame, None, "RGB", None, False))
            return [reference.prepared for reference in found]
    else:
        given = [
            prepare_reference(pipeline, load_image(path), name=path.stem) for path in job.references
        ]
        labels = reference_labels(list(job.references))

        def anchor(_frame):
            return [reference.prepared for reference in given]

    return colorize_clip(
        pipeline,
        job.source,
        output_paths(job, labels),
        anchor,
        reanchor_at_cuts=bool(job.auto_top),
        config=VideoConfig(temporal=job.temporal, scene_cut=job.scene_cut),
        encode=EncodeOptions(codec=job.codec, crf=job.crf),
        max_frames=job.max_frames,
        progress=progress,
    )


@friendly_errors
def video_command(
    inputs: Annotated[list[Path], typer.Argument(help="Video files, or folders of them.")],
    reference: Annotated[
        list[Path] | None,
        typer.Option("--reference", "-r", help="Color reference; repeat for one video each."),
    ] = None,
    auto: Annotated[
        bool, typer.Option(help="Retrieve references from an index at each scene.")
    ] = False,
    top: Annotated[int, typer.Option(help="With --auto: how many output videos.")] = 1,
    index: Annotated[str | None, typer.Option(help="With --auto: index folder or URI.")] = None,
    trust_index: Annotated[
        bool, typer.Option(help="With --auto: take the index's storage options.")
    ] = False,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path(
        "chromaref-out"
    ),
    codec: Annotated[str, typer.Option(help="Video codec of the outputs.")] = "libx264",
    crf: Annotated[int, typer.Option(help="Quality (x264 CRF: lower is better).")] = 18,
    temporal: Annotated[
        bool, typer.Option(help="Carry colors from frame to frame (off: each frame alone).")
    ] = True,
    scene_cut: Annotated[
        float, typer.Option(help="Luminance-histogram jump (0..2) that counts as a scene cut.")
    ] = 0.6,
    max_frames: Annotated[
        int | None, typer.Option(help="Stop after this many frames (a preview).")
    ] = None,
    working_size: Annotated[
        int, typer.Option(help="Long side (px) of the matched copy.")
    ] = MatchingConfig().working_size,
    address: Annotated[
        str | None, typer.Option(help="Colorize the clips as Ray tasks on this cluster.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details.")] = False,
) -> None:
    """Colorize videos from color references: one output video per reference, colors carried
    from frame to frame (optical flow) and re-anchored at scene cuts."""
    setup_logging(verbose)
    if bool(reference) == auto:
        raise ConfigError("give references with --reference/-r, or use --auto (not both)")
    if top < 1:
        raise ConfigError(f"--top must be at least 1, got {top}")
    clips = find_clips(inputs)
    out = out.expanduser().resolve()  # absolute: a cluster's workers run in another folder
    out.mkdir(parents=True, exist_ok=True)
    references = tuple(r.expanduser().resolve() for r in reference or ())
    if index and "://" not in index:
        index = str(Path(index).expanduser().resolve())
    jobs = [
        VideoJob(
            clip.resolve(),
            out,
            references,
            top if auto else 0,
            index,
            trust_index,
            working_size,
            temporal,
            scene_cut,
            codec,
            crf,
            max_frames,
        )
        for clip in clips
    ]
    run = _run_on_ray if address else _run_here
    failed = run(jobs, address, show=not quiet and sys.stderr.isatty())
    if failed:
        console.print(f"[yellow]skipped {len(failed)} clip(s):[/yellow]")
        for clip, reason in failed:
            console.print(f"  {clip}: {reason}", highlight=False)
        raise typer.Exit(EXIT_PARTIAL)


def _report(result) -> None:
    cuts = f", scene cuts at frames {result.cuts}" if result.cuts else ""
    console.print(
        f"{result.frames} frames in {result.seconds:.1f} s ({result.fps:.2f} frames/s){cuts}",
        highlight=False,
    )
    for path in result.outputs:
        typer.echo(str(path))


def _run_here(jobs: list[VideoJob], _address: None, *, show: bool) -> list[tuple[Path, str]]:
    failed = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[fps]} frames/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=not show) as bar:
        for job in jobs:
            task = bar.add_task(job.source.name, total=None, fps="-")

            def advance(done: int, total: int | None, task=task) -> None:
                speed = bar.tasks[task].speed
                bar.update(task, completed=done, total=total, fps=f"{speed:.1f}" if speed else "-")

            try:
                _report(colorize_job(job, advance))
            except ChromarefError as exc:
                if len(jobs) == 1:
                    raise
                failed.append((job.source, str(exc)))
    return failed


def _run_on_ray(jobs: list[VideoJob], address: str, *, show: bool) -> list[tuple[Path, str]]:
    """One Ray task per clip; a task whose worker dies is retried (Ray's `max_retries`)."""
    import ray

    from chromaref.retrieval.runtime import ensure_ray

    ensure_ray(address)
    remote = ray.remote(num_cpus=1, max_retries=2)(_colorize_remote)
    pending = {remote.remote(job): job for job in jobs}
    failed = []
    while pending:
        [ready], _ = ray.wait(list(pending), num_returns=1)
        job = pending.pop(ready)
        result, error = ray.get(ready)
        if error is None:
            _report(result)
        else:
            failed.append((job.source, error))
    return failed


def _colorize_remote(job: VideoJob):
    """A Ray task: (result, None), or (None, the error's line) for a clip that cannot be done."""
    try:
        return colorize_job(job), None
    except ChromarefError as exc:
        return None, str(exc)
