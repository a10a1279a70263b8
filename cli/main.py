"""The `chromaref` command line.

    chromaref demo                                   # colorize a bundled photo, print where
    chromaref colorize old.jpg -r ref.jpg --out out/ # one result per reference + a grid
    chromaref colorize photos/ -r a.jpg -r b.jpg --out out/ --format jpg --debug
    chromaref backbones                              # which feature extractors are usable

Errors a user can act on print one line and exit non-zero; never a traceback.
"""

from __future__ import annotations

import os

# OpenMP threads (torch, FAISS) spin while waiting by default: beside another busy process they
# burn the core it needs and stall (seconds per image). Read once, when torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from chromaref.cli._common import (
    EXIT_PARTIAL,
    check_reference_choice,
    console,
    friendly_errors,
    setup_logging,
)
from chromaref.cli._model import ModelOption, build_pipeline
from chromaref.cli.eval_cmd import eval_command
from chromaref.cli.eval_video_cmd import eval_video_command
from chromaref.cli.index_app import index_app
from chromaref.cli.serve_cmd import serve_command
from chromaref.cli.train_cmd import train_command
from chromaref.cli.video_cmd import video_command
from chromaref.platform.config import PipelineConfig
from chromaref.platform.errors import ChromarefError, ConfigError

if TYPE_CHECKING:
    from chromaref.cli._colorize import RunSummary

DEFAULTS = PipelineConfig()  # option defaults come from the one place that sets them
app = typer.Typer(
    name="chromaref",
    help="Exemplar-based colorization with automatic reference retrieval.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(index_app, name="index")
app.command("eval")(eval_command)
app.command("eval-video")(eval_video_command)
app.command("train")(train_command)
app.command("serve")(serve_command)
app.command("video")(video_command)


class OutputFormat(StrEnum):
    png = "png"
    jpg = "jpg"


@app.command()
@friendly_errors
def colorize(
    targets: Annotated[
        list[Path],
        typer.Argument(help="Gray photos, or folders searched recursively for images."),
    ],
    reference: Annotated[
        list[Path] | None,
        typer.Option("--reference", "-r", help="Color reference; repeat for one result each."),
    ] = None,
    auto: Annotated[
        bool,
        typer.Option(help="Retrieve references from an index (default: the bundled photos)."),
    ] = False,
    top: Annotated[int, typer.Option(help="With --auto: how many references (results).")] = 3,
    index: Annotated[
        str | None,
        typer.Option(help="With --auto: index folder or URI (`chromaref index build`)."),
    ] = None,
    trust_index: Annotated[
        bool,
        typer.Option(
            help="With --auto: let the index's object-store options (endpoint, scheme, region) "
            "apply; only for indexes you built or trust (see docs/retrieval.md)."
        ),
    ] = False,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path(
        "chromaref-out"
    ),
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="File format of the results.")
    ] = OutputFormat.png,
    method: Annotated[
        str,
        typer.Option(
            help="trained (default: the learned colorization sub-net, the shipped model or "
            "--model), training-free (reference colors only, no learned weights), or a "
            "baseline: reinhard, welsh."
        ),
    ] = DEFAULTS.colorizer,
    model: ModelOption = None,
    backbone: Annotated[
        str, typer.Option(help="Feature extractor (see `chromaref backbones`).")
    ] = DEFAULTS.matching.backbone,
    working_size: Annotated[
        int, typer.Option(help="Long side (px) of the copy that is matched; chroma is upsampled.")
    ] = DEFAULTS.matching.working_size,
    debug: Annotated[
        bool,
        typer.Option(help="Also save the warped reference and the similarity maps under debug/."),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details.")] = False,
) -> None:
    """Colorize TARGETS from color references: one result per reference, plus a grid
    (input | reference | result). Results keep the input's size and exact luminance.

    Give references with -r, or let --auto pick the --top best from an index."""
    from chromaref.cli._colorize import fixed_references, run_colorize

    setup_logging(verbose)
    check_reference_choice(reference, auto)
    if top < 1:
        raise ConfigError(f"--top must be at least 1, got {top}")
    from chromaref.platform.models import shared_backbones

    with shared_backbones():  # the pipeline, the index and its first build: one backbone load
        pipeline = build_pipeline(method, backbone=backbone, working_size=working_size, model=model)
        if auto:
            from chromaref.cli._auto import auto_references
            from chromaref.retrieval.default import open_index

            references_for = auto_references(pipeline, open_index(index, trust=trust_index), top)
        else:
            references_for = fixed_references(pipeline, reference)
    summary = run_colorize(
        pipeline,
        targets,
        references_for,
        out,
        fmt=fmt.value,
        debug=debug,
        console=console,
        progress=not quiet and sys.stderr.isatty(),
        protected=reference or (),
    )
    if summary.written or summary.stopped is None:  # stopped before any file: its line only
        console.print(
            f"colorized {summary.done}/{summary.targets} image(s): "
            f"{len(summary.written)} file(s) in {out}/",
            highlight=False,
        )
        skipped = {path for path, _ in summary.failed}
        for target in (t for t in summary.renamed if str(t.path) not in skipped):
            console.print(
                f"  note: {target.path} shares its name with another input; "
                f"its results are named {target.key}__...",
                highlight=False,
            )
        for path in summary.written:
            typer.echo(str(path))
    _exit_if_skipped(summary)


def _exit_if_skipped(summary: RunSummary) -> None:
    """One line per skipped target, then exit 1: the run went on, but results are missing.
    A run stopped early (damaged index) ends with that error's one line instead (exit 2);
    the caller has listed the files written before it."""
    if summary.failed:
        console.print(f"[yellow]skipped {len(summary.failed)} file(s):[/yellow]")
    for path, reason in summary.failed:
        line = reason if reason.startswith(path) else f"{path}: {reason}"
        console.print(f"  {line}", highlight=False)
    if summary.stopped is not None:
        raise summary.stopped
    if summary.failed:
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
@friendly_errors
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path(
        "chromaref-out"
    ),
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details.")] = False,
) -> None:
    """Colorize a bundled gray photo from a bundled color reference (works offline)."""
    from chromaref.cli._colorize import fixed_references, run_colorize
    from chromaref.platform.assets import demo_pair

    setup_logging(verbose)
    target, ref = demo_pair()
    pipeline = build_pipeline(DEFAULTS.colorizer)
    summary = run_colorize(
        pipeline,
        [target],
        fixed_references(pipeline, [ref]),
        out,
        fmt="png",
        debug=False,
        console=console,
        progress=False,
        protected=[ref],
    )
    if not summary.failed:
        console.print(f"demo: colorized {target.name} from {ref.name}; wrote:", highlight=False)
    for path in summary.written:
        typer.echo(str(path))
    _exit_if_skipped(summary)


@app.command()
@friendly_errors
def backbones() -> None:
    """List feature extractors and whether their weights are available here."""
    from chromaref.platform.models import get_backbone, list_backbones

    for name in list_backbones():
        try:
            meta = get_backbone(name).meta
            status = f"ok  ({meta.source}, sha256 {meta.weights_sha256[:12]})"
        except ChromarefError as exc:
            status = f"unavailable: {exc}"
        typer.echo(f"{name:20s} {status}")
