"""`--model`: a colornet file, or a model in MLflow (`runs:/<id>/model`,
`models:/chromaref-colorizer/<version>`), for the `trained` colorizer (the default)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from chromaref.platform.config import TrainedConfig

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="The trained colorizer's model (the default method): a colornet file (`chromaref "
        "train` writes one; default: the shipped model, docs/model_card.md), "
        "runs:/<run id>/model or models:/chromaref-colorizer/<version> from the MLflow store "
        "($MLFLOW_TRACKING_URI, default ./mlruns.db).",
    ),
]


@contextmanager
def trained_config(model: str | None) -> Iterator[TrainedConfig]:
    """The trained colorizer's settings for `model`; an MLflow URI is downloaded into a
    temporary folder that lives as long as the block (the colorizer reads the file once, when
    the pipeline is built)."""
    from chromaref.training.tracking import local_model_file

    if model is None:
        yield TrainedConfig()
        return
    with local_model_file(model) as path:
        yield TrainedConfig(model=path)
