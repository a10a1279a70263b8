"""Training checkpoints: one self-describing dict (nanoGPT's rule), one file per checkpoint.

    {"model": state_dict, "model_config": ColorNetConfig dict, "optimizer": state_dict,
     "step": int, "config": TrainConfig dict, "run_id": MLflow run id, "metrics": {...}}

Rank 0 writes it into a fresh folder that Ray Train persists (`Checkpoint.from_directory` +
`ray.train.report`), so a checkpoint is complete or absent. The network is rebuilt from the
stored `model_config`, never from the current command line. Plain containers only: it loads
with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

from chromaref.platform.errors import ConfigError
from chromaref.platform.models import Backbone
from chromaref.platform.models import colornet as colornet_module
from chromaref.platform.models.colornet import ColorNet, ColorNetConfig
from chromaref.training.config import TrainConfig

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"


def new_colornet(config: TrainConfig, backbone: Backbone) -> ColorNet:
    """The configured ColorNet variant, sized for this backbone's feature levels (one
    similarity map per level plus two, and the concatenated feature channels)."""
    channels = backbone.meta.channels
    builder = getattr(colornet_module, config.model)
    return builder(
        **{
            **config.model_options,
            "similarity_channels": 2 + len(channels),
            "feature_channels": sum(channels),
        }
    )


def save_state(
    directory: str | os.PathLike[str],
    *,
    model: ColorNet,
    optimizer: torch.optim.Optimizer,
    step: int,
    config: TrainConfig,
    run_id: str,
    metrics: dict[str, float],
) -> Path:
    """Write the checkpoint file into `directory` (a fresh temporary folder)."""
    path = Path(directory) / CHECKPOINT_FILE
    state = {
        **model_state(model),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "config": config.model_dump(mode="json"),
        "run_id": run_id,
        "metrics": dict(metrics),
    }
    torch.save(state, path)
    return path


def load_state(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint folder's file (on the CPU).

    Raises:
        ConfigError: the folder holds no readable chromaref checkpoint.
    """
    path = Path(directory) / CHECKPOINT_FILE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable training checkpoint ({exc})") from None
    if not isinstance(state, dict) or not {"model", "step", "config", "run_id"} <= state.keys():
        raise ConfigError(f"{path}: not a chromaref training checkpoint")
    return state


def model_state(model: ColorNet) -> dict[str, Any]:
    """The network part of a checkpoint: weights and architecture (`model_from_state` input)."""
    return {"model": model.state_dict(), "model_config": model.config.model_dump(mode="json")}


def model_from_state(state: dict[str, Any]) -> ColorNet:
    """The network of a checkpoint (or of a `model_state`), rebuilt from its architecture."""
    model = ColorNet(ColorNetConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    return model
