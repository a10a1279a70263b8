"""`chromaref serve`: auto-reference colorization over HTTP (Ray Serve), with a web page.

    chromaref serve                                   # bundled index, http://127.0.0.1:8000/
    chromaref serve --index my-index/ --port 9000
    chromaref serve --config configs/serve.yaml --set colorizer.max_replicas=4
    chromaref serve --address auto                    # on the cluster `ray start` runs here

Stops on Ctrl-C or SIGTERM; on a private local Ray, nothing it started is left running.
See docs/serving.md for the API and every setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from chromaref.cli._common import console, friendly_errors, setup_logging


@friendly_errors
def serve_command(
    index: Annotated[
        str | None, typer.Option(help="Index folder (default: the bundled photos' index).")
    ] = None,
    trust_index: Annotated[
        bool, typer.Option(help="Take the index's corpus storage options (your own index).")
    ] = False,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port.", min=1, max=65535)] = 8000,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML settings, or a Ray Serve config file."),
    ] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option("--set", help="KEY=VALUE for any setting (colorizer.max_replicas=2)."),
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster (host:port, ray://..., auto); $RAY_ADDRESS.")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Prometheus export port of a private Ray (default: any).")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log details, with the replicas' output.")
    ] = False,
) -> None:
    """Serve colorization over HTTP: a JSON API (/docs) and a web page (/)."""
    from chromaref.platform.settings import parse_assignment
    from chromaref.serving.config import load_serve_config
    from chromaref.serving.runner import Endpoint, preflight, serve_until_stopped

    setup_logging(verbose)
    overrides: dict[str, Any] = dict(parse_assignment(text) for text in settings or ())
    if index is not None:
        overrides["index"] = index
    if trust_index:
        overrides["trust_index"] = True
    resolved = load_serve_config(config, overrides)
    console.print("loading the index and models...", highlight=False)
    count = preflight(resolved)

    def ready(url: str, metrics: int | None) -> None:
        console.print(
            f"chromaref is serving {count} references at {url} (API: {url}docs); Ctrl-C to stop",
            highlight=False,
        )
        if metrics:
            console.print(
                f"Prometheus metrics: http://127.0.0.1:{metrics}/metrics", highlight=False
            )
        typer.echo(url)  # stdout: the URL alone, for scripts

    serve_until_stopped(
        resolved,
        Endpoint(host, port),
        address=address,
        metrics_port=metrics_port,
        verbose=verbose,
        on_ready=ready,
    )
    console.print("stopped", highlight=False)
