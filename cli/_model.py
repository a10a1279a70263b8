"""The colorizer a command runs: `--method`, and `--model` for the `trained` colorizer (the
default): a colornet file, or a model in MLflow (`runs:/<id>/model`,
`models:/chromaref-colorizer/<version>`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from chromaref.platform.config import (
    VIDEO_COLORIZERS,
    MatchingConfig,
    PipelineConfig,
    TrainedConfig,
)
from chromaref.platform.errors import ConfigError

if TYPE_CHECKING:
    from chromaref.platform.pipeline import ColorizationPipeline

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
def trained_config(model: str | None, tracking_uri: str | None = None) -> Iterator[TrainedConfig]:
    """The trained colorizer's settings for `model`; an MLflow URI is downloaded (from
    `tracking_uri`, default as `chromaref train` resolves it) into a temporary folder that lives
    as long as the block (the colorizer reads the file once, when the pipeline is built)."""
    from chromaref.training.tracking import local_model_file

    if model is None:
        yield TrainedConfig()
        return
    with local_model_file(model, tracking_uri) as path:
        yield TrainedConfig(model=path)


def portable_model(model: str | None) -> tuple[str | None, str | None]:
    """`--model` as Ray tasks in other folders open it: (a file as an absolute path, None), or
    (an MLflow URI, this process's tracking store as an absolute URI). Opened here once, so a
    model that cannot be used is one error before any work, not one per clip or piece.

    Raises:
        ConfigError: neither a file nor an MLflow model URI.
        WeightsError: it cannot be found or is not a colornet model.
    """
    from chromaref.platform.models.colornet import ColorNet
    from chromaref.training.config import TrackingConfig
    from chromaref.training.tracking import (
        MODEL_URI_SCHEMES,
        local_model_file,
        resolve_tracking_uri,
    )

    if model is None:
        return None, None
    if "://" in model:
        raise ConfigError(
            f"--model takes a colornet file, runs:/<run id>/model or "
            f"models:/chromaref-colorizer/<version>, not {model}"
        )
    tracking_uri = None
    if model.startswith(MODEL_URI_SCHEMES):
        tracking_uri = resolve_tracking_uri(TrackingConfig())
    else:
        model = str(Path(model).expanduser().resolve())
    with local_model_file(model, tracking_uri) as path:
        ColorNet.from_file(path)
    return model, tracking_uri


def check_model_method(method: str, model: str | None) -> None:
    """Refuse a `--model` that the chosen method would silently ignore."""
    if model is not None and method != "trained":
        raise ConfigError(f"--model is for --method trained, not {method}")


def check_video_method(method: str, model: str | None) -> None:
    """Refuse, before any work, a method the video mode cannot run (it matches every frame to
    the reference) or a `--model` it would ignore."""
    if method not in VIDEO_COLORIZERS:
        raise ConfigError(f"--method must be one of {', '.join(VIDEO_COLORIZERS)}, got {method}")
    check_model_method(method, model)


def build_pipeline(
    method: str,
    *,
    backbone: str = MatchingConfig().backbone,
    working_size: int = MatchingConfig().working_size,
    model: str | None = None,
    tracking_uri: str | None = None,
) -> ColorizationPipeline:
    """The pipeline for `--method`, `--model` (an MLflow URI read from `tracking_uri`),
    `--backbone` and `--working-size`.

    Raises:
        ConfigError: `--model` with another method than `trained`, or an unknown method.
    """
    from chromaref.platform.pipeline import ColorizationPipeline

    check_model_method(method, model)
    with trained_config(model, tracking_uri) as trained:
        matching = MatchingConfig(backbone=backbone, working_size=working_size)
        return ColorizationPipeline(
            PipelineConfig(colorizer=method, matching=matching, trained=trained)
        )
