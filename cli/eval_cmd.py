"""`chromaref eval`: the evaluation report command (see chromaref.evaluation.run)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from chromaref.cli._common import console, friendly_errors, setup_logging, writable_folder
from chromaref.cli._model import ModelOption, trained_config
from chromaref.platform.errors import ConfigError


@friendly_errors
def eval_command(
    images: Annotated[Path, typer.Option("--images", help="Folder of color photos (the truth).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder.")],
    index: Annotated[
        Path | None,
        typer.Option(help="Index for the `retrieved` reference (default: index --images itself)."),
    ] = None,
    methods: Annotated[
        str,
        typer.Option(help="Comma-separated: gray, reinhard, welsh, training-free, trained."),
    ] = "gray,reinhard,welsh,training-free,trained",
    model: ModelOption = None,
    limit: Annotated[
        int | None, typer.Option(help="Evaluate this many photos, spread over the folder.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details.")] = False,
) -> None:
    """Turn each photo gray, colorize it with each method from a given, a retrieved, a
    same-category (CATEGORY/photo folders) and an unrelated reference, and write metrics (CSV,
    JSON, Markdown), grids and an HTML report."""
    from chromaref.evaluation.report import markdown_table, summarise, write_report
    from chromaref.evaluation.run import check_request, evaluate, index_retriever
    from chromaref.retrieval.build import BuildConfig, build_index
    from chromaref.retrieval.index import Index

    setup_logging(verbose)
    chosen = tuple(m.strip() for m in methods.split(",") if m.strip())
    columns = (TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    check_request(chosen, limit)  # before the index build, which takes a while
    if model is not None and "trained" not in chosen:
        raise ConfigError("--model is for the trained method: add it to --methods")
    writable_folder(out)
    with tempfile.TemporaryDirectory() as tmp, trained_config(model) as trained:
        if index is None:
            index = Path(tmp) / "index"
            build_index(images, index, config=BuildConfig(runner="local"))
        with Progress(*columns, console=console, disable=quiet or not sys.stderr.isatty()) as bar:
            task = bar.add_task("evaluating", total=None)
            result = evaluate(
                images,
                methods=chosen,
                retrieve=index_retriever(Index.open(index)),
                limit=limit,
                trained=trained,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    report = write_report(result, out, chosen)
    typer.echo(markdown_table(summarise(result)))
    console.print(f"report: {report}", highlight=False)
    if result.skipped:
        console.print(f"[yellow]skipped {len(result.skipped)} photo(s)[/yellow] (see the report)")
