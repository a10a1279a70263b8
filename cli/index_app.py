"""`chromaref index build|search|verify`: reference indexes over image corpora."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from chromaref.cli._common import console, friendly_errors, setup_logging

index_app = typer.Typer(
    help="Build and search reference indexes (Ray Data + FAISS).",
    no_args_is_help=True,
    add_completion=False,
)


@index_app.command("build")
@friendly_errors
def build(
    corpus: Annotated[
        str,
        typer.Argument(
            help="Folder tree (CLASS/*.JPEG gives labels), Parquet of bytes, or tar shards; a "
            "local path or a URI: s3://bucket/prefix, gs://..., hdfs://... (options in the query, "
            "e.g. ?endpoint_override=host:9000&scheme=http)."
        ),
    ],
    out: Annotated[
        str,
        typer.Option(
            "--out",
            "-o",
            help="Index folder to create/replace, or an object-store URI (s3://bucket/idx?...): "
            "built locally, then uploaded with manifest.json last.",
        ),
    ],
    address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster to run on: host:port, ray://host:10001, or auto (the one `ray "
            "start` runs here). Default: $RAY_ADDRESS, else a private local Ray."
        ),
    ] = None,
    local: Annotated[
        bool, typer.Option(help="Run in this process without Ray (small corpora).")
    ] = False,
    wait: Annotated[
        float,
        typer.Option(
            help="If another build of --out runs, wait up to this many seconds for it, then "
            "build (default: stop at once and say which process holds it).",
            min=0.0,
        ),
    ] = 0.0,
    shard_size: Annotated[int, typer.Option(help="Images per shard (the resume unit).")] = 1000,
    batch_size: Annotated[int, typer.Option(help="Images per descriptor batch.")] = 32,
    concurrency: Annotated[
        int | None, typer.Option(help="Descriptor actors (default: from cluster resources).")
    ] = None,
    index_kind: Annotated[
        str,
        typer.Option(
            help="FAISS index: auto (Flat up to 50k images, HNSW up to 2M, IVF-PQ above), "
            "flat, hnsw or ivfpq."
        ),
    ] = "auto",
    pca_dim: Annotated[
        int | None,
        typer.Option(help="Project the semantic vectors to this many dims first (smaller index)."),
    ] = None,
    target_recall: Annotated[
        float, typer.Option(help="recall@10 vs exact search that the search settings must reach.")
    ] = 0.95,
    gpu: Annotated[
        bool | None,
        typer.Option("--gpu/--no-gpu", help="Build FAISS on GPU (default: when FAISS sees one)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details.")] = False,
) -> None:
    """Index CORPUS into --out. An interrupted build resumes when run again."""
    from chromaref.retrieval.build import BuildConfig, build_index
    from chromaref.retrieval.vector_index import VectorIndexConfig

    setup_logging(verbose)
    config = BuildConfig(
        runner="local" if local else "ray",
        shard_size=shard_size,
        batch_size=batch_size,
        concurrency=concurrency,
        vectors=VectorIndexConfig(
            kind=index_kind, pca_dim=pca_dim, target_recall=target_recall, use_gpu=gpu
        ),
    )
    columns = (
        TextColumn("indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=quiet or not sys.stderr.isatty()) as bar:
        task = bar.add_task("indexing", total=None, rate="")

        def progress(done: int, total: int) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            rate = f"{done / elapsed:.1f} img/s" if elapsed > 1 else ""
            bar.update(task, completed=done, total=total, rate=rate)

        report = build_index(
            corpus, out, config=config, address=address, progress=progress, wait=wait
        )
    console.print(
        f"indexed {report.count} image(s) into {out} in {report.seconds:.1f} s "
        f"({report.images_per_second:.1f} img/s, {report.index_bytes / 1e6:.1f} MB, "
        f"{report.shards} shard(s), {report.shards_resumed} resumed)",
        highlight=False,
    )
    console.print(report.stages_text(), highlight=False)
    if report.skipped:
        console.print(f"[yellow]skipped {len(report.skipped)} file(s):[/yellow]")
        for uri, reason in report.skipped[:50]:
            console.print(f"  {uri}: {reason}", highlight=False)
        if len(report.skipped) > 50:
            console.print(f"  ... and {len(report.skipped) - 50} more (see manifest.json)")


@index_app.command("search")
@friendly_errors
def search(
    index: Annotated[str, typer.Argument(help="Index folder or object-store URI.")],
    query: Annotated[Path, typer.Argument(help="Query image (gray or color).")],
    top: Annotated[int, typer.Option(min=1, help="How many references.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Rank the index's references for QUERY (semantic, luminance, local, final scores)."""
    from chromaref.retrieval.index import Index

    setup_logging(False)
    hits = Index.open(index).search(query, top)
    if as_json:
        rows = [{k: _json_value(v) for k, v in asdict(hit).items()} for hit in hits]
        typer.echo(json.dumps(rows, indent=2, allow_nan=False))
        return
    typer.echo(f"{'rank':>4}  {'final':>6}  {'semantic':>8}  {'luminance':>9}  {'local':>6}  uri")
    for rank, hit in enumerate(hits, start=1):
        typer.echo(
            f"{rank:>4}  {hit.score:6.3f}  {hit.semantic:8.3f}  {_fmt(hit.luminance):>9}  "
            f"{_fmt(hit.local):>6}  {_printable(hit.uri)}"
            + (f"  [{_printable(hit.label)}]" if hit.label else "")
        )


@index_app.command("verify")
@friendly_errors
def verify(index: Annotated[Path, typer.Argument(help="Index folder.")]) -> None:
    """Check every file of INDEX (shards included) against the sha256 in its manifest.

    Opening an index hashes only what it reads in full; this reads everything, e.g. for an
    index copied from elsewhere."""
    from chromaref.retrieval import store

    setup_logging(False)
    manifest = store.read_manifest(index)
    read = store.verify_files(index, manifest)
    files = len(store.SEARCH_FILES) + len(manifest["shards"])
    typer.echo(f"{index}: {files} files ({read / 1e6:.1f} MB) match the manifest")


def _json_value(value: object) -> object:
    """JSON has no NaN or infinity: such a score is written as null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _printable(text: str) -> str:
    """Text from an index with control characters escaped, so it cannot drive the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
