"""`chromaref video`: colorize whole clips, one output video per reference, without flicker.

    chromaref video old.mp4 -r ref.jpg --out out/           # colors anchored on ref.jpg
    chromaref video old.mp4 --auto --top 2 --out out/       # references retrieved per scene
    chromaref video clips/ -r ref.jpg --out out/ --address auto   # Ray tasks of ~60 s each

Each output keeps the clip's frames, timestamps, size, rotation and audio (copied). A clip that
cannot be read is skipped with one line (exit 1); outputs appear only when complete.
"""

from __future__ import annotations

import sys
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

from chromaref.cli._common import (
    EXIT_PARTIAL,
    check_reference_choice,
    console,
    friendly_errors,
    setup_logging,
    writable_folder,
)
from chromaref.cli._model import ModelOption, check_video_method, portable_model
from chromaref.cli._video_job import (
    JobResult,
    VideoJob,
    absolute,
    clip_label,
    colorize_in_pieces,
    colorize_job,
    find_clips,
)
from chromaref.platform.config import MatchingConfig, PipelineConfig
from chromaref.platform.errors import ChromarefError, ConfigError


@friendly_errors
def video_command(
    inputs: Annotated[
        list[str], typer.Argument(help="Video files or folders of them: paths or URIs (s3://).")
    ],
    reference: Annotated[
        list[str] | None,
        typer.Option(
            "--reference", "-r", help="Color reference (path or URI); repeat for one video each."
        ),
    ] = None,
    auto: Annotated[
        bool, typer.Option(help="Retrieve references from an index at each scene.")
    ] = False,
    top: Annotated[int, typer.Option(help="With --auto: how many output videos.")] = 1,
    index: Annotated[str | None, typer.Option(help="With --auto: index folder or URI.")] = None,
    trust_index: Annotated[
        bool, typer.Option(help="With --auto: take the index's storage options.")
    ] = False,
    out: Annotated[
        str, typer.Option("--out", "-o", help="Output folder: a path or a URI (s3://).")
    ] = "chromaref-out",
    codec: Annotated[str, typer.Option(help="Video codec of the outputs.")] = "libx264",
    crf: Annotated[
        int, typer.Option(min=0, max=51, help="Quality (x264 CRF, 0..51: lower is better).")
    ] = 18,
    temporal: Annotated[
        bool, typer.Option(help="Carry colors from frame to frame (off: each frame alone).")
    ] = True,
    scene_cut: Annotated[
        float, typer.Option(help="Luminance-histogram jump (0..2) that counts as a scene cut.")
    ] = 0.6,
    max_frames: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many frames (a preview).")
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            help="trained (default: the learned colorization sub-net, the shipped model or "
            "--model) or training-free (reference colors only, no learned weights)."
        ),
    ] = PipelineConfig().colorizer,
    model: ModelOption = None,
    working_size: Annotated[
        int, typer.Option(help="Long side (px) of the matched copy.")
    ] = MatchingConfig().working_size,
    address: Annotated[
        str | None, typer.Option(help="Colorize the clips as Ray tasks on this cluster.")
    ] = None,
    chunk_seconds: Annotated[
        float,
        typer.Option(
            help="With --address: split clips into Ray tasks of about this many seconds "
            "(0: one task per clip)."
        ),
    ] = 60.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details.")] = False,
) -> None:
    """Colorize videos from color references: one output video per reference, colors carried
    from frame to frame (optical flow) and re-anchored at scene cuts."""
    setup_logging(verbose)
    check_reference_choice(reference, auto)
    if top < 1:
        raise ConfigError(f"--top must be at least 1, got {top}")
    check_video_method(method, model)
    if chunk_seconds < 0:
        raise ConfigError(f"--chunk-seconds must be 0 or more, got {chunk_seconds}")
    clips = find_clips(inputs)
    model, tracking_uri = portable_model(model)  # checked before --out is made
    out = absolute(out)  # absolute: a cluster's workers run in another folder
    if "://" not in out:
        writable_folder(Path(out))
    references = tuple(absolute(r) for r in reference or ())
    index = absolute(index) if index else None
    jobs = [
        VideoJob(
            source=clip,
            out=out,
            references=references,
            auto_top=top if auto else 0,
            index=index,
            trust_index=trust_index,
            method=method,
            model=model,
            tracking_uri=tracking_uri,
            working_size=working_size,
            temporal=temporal,
            scene_cut=scene_cut,
            codec=codec,
            crf=crf,
            max_frames=max_frames,
            chunk_seconds=chunk_seconds or None,
        )
        for clip in clips
    ]
    run = _run_on_ray if address else _run_here
    failed = run(jobs, address, show=not quiet and sys.stderr.isatty())
    if failed:
        console.print(f"[yellow]skipped {len(failed)} clip(s):[/yellow]")
        for clip, reason in failed:  # a video error names its clip already
            console.print(f"  {clip}: {reason.removeprefix(f'{clip}: ')}", highlight=False)
        raise typer.Exit(EXIT_PARTIAL)


def _report(done: JobResult) -> None:
    clip = done.clip
    cuts = f", scene cuts at frames {clip.cuts}" if clip.cuts else ""
    console.print(
        f"{clip.frames} frames in {clip.seconds:.1f} s ({clip.fps:.2f} frames/s){cuts}",
        highlight=False,
    )
    for output in done.outputs:
        typer.echo(output)


def _run_here(jobs: list[VideoJob], _address: None, *, show: bool) -> list[tuple[str, str]]:
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
            task = bar.add_task(Path(clip_label(job)).name, total=None, fps="-")

            def advance(done: int, total: int | None, task=task) -> None:
                speed = bar.tasks[task].speed
                bar.update(task, completed=done, total=total, fps=f"{speed:.1f}" if speed else "-")

            try:
                _report(colorize_job(job, advance))
            except ChromarefError as exc:
                if len(jobs) == 1:
                    raise
                failed.append((clip_label(job), str(exc)))
    return failed


def _run_on_ray(jobs: list[VideoJob], address: str, *, show: bool) -> list[tuple[str, str]]:
    """One Ray task per clip, which runs a long clip as pieces (tasks of their own, see
    `colorize_in_pieces`); a task whose worker dies is retried (Ray's `max_retries`)."""
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
            failed.append((clip_label(job), error))
    return failed


def _colorize_remote(job: VideoJob):
    """A Ray task: (result, None), or (None, the error's line) for a clip that cannot be done."""
    try:
        return colorize_in_pieces(job) if job.chunk_seconds else colorize_job(job), None
    except ChromarefError as exc:
        return None, str(exc)
