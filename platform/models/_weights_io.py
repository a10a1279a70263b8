"""The colorization model file: one `torch.save`d dict holding the weights and their provenance.

    {"format": "chromaref-colornet", "format_version": 1, "architecture": "colornet",
     "config": {...}, "matching": {...} | None, "run_id": str | None, "metrics": {...},
     "dataset": {...}, "calibration": {...}, "created": ISO time, "dtype": "float32" | "float16",
     "state_dict": {name: Tensor}}

Only plain containers, strings, numbers and tensors are stored, so the file loads with
`torch.load(..., weights_only=True)` (no pickled code runs). The architecture is rebuilt from
the stored config, never from the command line (nanoGPT's checkpoint rule). Every refusal is
one line that names the file and the fix.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from chromaref.platform import files
from chromaref.platform.errors import WeightsError, first_line

logger = logging.getLogger(__name__)

FORMAT = "chromaref-colornet"
FORMAT_VERSION = 1
HOW_TO_GET = "train one with `chromaref train`, or pass --model PATH to a colornet model file"
_MAX_REASON = 160


@dataclass(frozen=True)
class ModelFileMeta:
    """What a loaded model file says about itself, plus the sha256 of the bytes that were read."""

    path: str
    sha256: str
    architecture: str
    config: dict[str, Any]
    dtype: str
    format_version: int = FORMAT_VERSION
    run_id: str | None = None
    matching: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    created: str = ""


def save_model_file(
    path: str | os.PathLike[str],
    state_dict: dict[str, Tensor],
    *,
    architecture: str,
    config: dict[str, Any],
    half: bool = False,
    run_id: str | None = None,
    matching: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    dataset: dict[str, Any] | None = None,
    calibration: dict[str, Any] | None = None,
) -> Path:
    """Write one model file atomically (all of it or nothing); fp16 halves its size.

    Args:
        path: destination; its folder is created.
        state_dict: the unwrapped model's weights (DDP's `.module`, not the wrapper).
        architecture: the family the loader must expect, e.g. "colornet".
        config: the architecture's hyperparameters, enough to rebuild it.
        half: store floating-point tensors as float16.
        run_id, matching, metrics, dataset: provenance (MLflow run, the similarity settings
            that made the training inputs, validation metrics, data and split).
        calibration: settings fitted after training that the colorizer applies (an optional
            key: files without it load as uncalibrated).
    Returns:
        The path written.
    """
    dtype = torch.float16 if half else torch.float32
    weights = {
        name: (t.detach().to("cpu", dtype) if t.is_floating_point() else t.detach().cpu())
        for name, t in state_dict.items()
    }
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": architecture,
        "config": config,
        "matching": matching,
        "run_id": run_id,
        "metrics": dict(metrics or {}),
        "dataset": dict(dataset or {}),
        "calibration": dict(calibration or {}),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "dtype": str(dtype).removeprefix("torch."),
        "state_dict": weights,
    }
    with files.atomic_path(path) as tmp:
        torch.save(payload, tmp)
    logger.info("saved %s model to %s (%s)", architecture, path, payload["dtype"])
    return Path(path)


def unreadable_reason(head: bytes, exc: BaseException) -> str:
    """Why `torch.load(weights_only=True)` refused a file whose first bytes are `head`, in
    words a user can act on (torch's own speak of pickles and opcodes)."""
    if not head:
        return "the file is empty"
    if not head.startswith((b"PK\x03\x04", b"\x80")):  # torch's zip format, a legacy pickle
        return "not a PyTorch weights file"
    if "weights only" in str(exc).lower() or "weights_only" in str(exc):
        return "it holds Python objects besides tensors, which are not loaded (unsafe)"
    return f"truncated or corrupt ({first_line(exc, _MAX_REASON)})"


def _refuse(path: object, reason: str) -> WeightsError:
    return WeightsError(f"{path}: {reason}; {HOW_TO_GET}")


def load_model_file(
    path: str | os.PathLike[str], *, architecture: str
) -> tuple[dict[str, Tensor], ModelFileMeta]:
    """Read and check a model file: (state dict, meta).

    Raises:
        WeightsError: the file is missing, unreadable (truncated, corrupt, not a torch file),
            of another format or format version, or holds another architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise _refuse(path, "model file not found")
    data = path.read_bytes()
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise _refuse(
            path, f"not a readable model file: {unreadable_reason(data[:4], exc)}"
        ) from exc
    found = payload.get("format") if isinstance(payload, dict) else None
    if found != FORMAT:
        raise _refuse(path, f"not a {FORMAT} file (format {found!r})")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise _refuse(
            path, f"{FORMAT} format version {version!r}, this chromaref reads {FORMAT_VERSION}"
        )
    if payload.get("architecture") != architecture:
        raise _refuse(path, f"holds a {payload.get('architecture')!r} model, not {architecture!r}")
    state = payload.get("state_dict")
    config = payload.get("config")
    if not isinstance(state, dict) or not all(isinstance(t, Tensor) for t in state.values()):
        raise _refuse(path, "corrupt model file (no state dict of tensors)")
    if not isinstance(config, dict):
        raise _refuse(path, "corrupt model file (no architecture config)")
    for key in ("matching", "metrics", "dataset", "calibration"):
        if not isinstance(payload.get(key) or {}, dict):
            raise _refuse(path, f"corrupt model file ({key} is not a mapping)")
    if not isinstance(payload.get("run_id") or "", str):
        raise _refuse(path, "corrupt model file (run_id is not text)")
    meta = ModelFileMeta(
        path=str(path),
        sha256=hashlib.sha256(data).hexdigest(),
        architecture=architecture,
        config=config,
        dtype=str(payload.get("dtype", "")),
        format_version=version,
        run_id=payload.get("run_id"),
        matching=payload.get("matching"),
        metrics=dict(payload.get("metrics") or {}),
        dataset=dict(payload.get("dataset") or {}),
        calibration=dict(payload.get("calibration") or {}),
        created=str(payload.get("created", "")),
    )
    return state, meta
