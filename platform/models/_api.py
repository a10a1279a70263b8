"""Backbone contract and registry: every feature extractor is resolved by name from here.

Configs, the CLI, Ray Train and Serve all ask this registry for models, so adding a backbone is
one decorated builder and nothing else.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor, nn

from chromaref.platform import files
from chromaref.platform.color import gray_from_l
from chromaref.platform.errors import ConfigError, WeightsError
from chromaref.platform.models._weights_io import unreadable_reason
from chromaref.platform.registry import Registry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackboneMeta:
    """Where a backbone's weights came from; goes into index manifests and checkpoints."""

    name: str
    weights_file: str
    weights_sha256: str
    source: str
    license: str
    strides: tuple[int, ...]
    channels: tuple[int, ...]


class Backbone(nn.Module):
    """A frozen, pretrained multi-level feature extractor fed with luminance only.

    Targets are gray and references are color; describing both from L alone puts them in the
    same feature space. Subclasses implement `normalize` (network-specific preprocessing of a
    gray sRGB image in [0, 1]) and `extract` (the list of feature maps, finest first).
    """

    meta: BackboneMeta

    def normalize(self, gray_rgb: Tensor) -> Tensor:
        raise NotImplementedError

    def extract(self, x: Tensor) -> list[Tensor]:
        raise NotImplementedError

    def forward(self, luminance: Tensor) -> list[Tensor]:
        """Multi-level features of a (B, 1, H, W) CIELAB L tensor in [0, 100], finest first."""
        return self.extract(self._input(luminance))

    def embed(self, luminance: Tensor) -> Tensor:
        """A global semantic vector per image, (B, D)."""
        return self.features_and_embedding(luminance)[1]

    def features_and_embedding(self, luminance: Tensor) -> tuple[list[Tensor], Tensor]:
        """Multi-level features and the semantic vector from one forward pass: the pooled
        deepest level by default; backbones with a classifier head use the head's input."""
        features = self(luminance)
        return features, features[-1].mean(dim=(-2, -1))

    def _input(self, luminance: Tensor) -> Tensor:
        if luminance.ndim != 4 or luminance.shape[1] != 1:
            shape = tuple(luminance.shape)
            raise ConfigError(f"backbone expects L shaped (B, 1, H, W), got {shape}")
        return self.normalize(gray_from_l(luminance).expand(-1, 3, -1, -1))


BACKBONES: Registry[Backbone] = Registry("backbone")
register_backbone = BACKBONES.register
list_backbones = BACKBONES.names


_loads = 0  # backbones built (weights read) in this process
_shared: dict[tuple, Backbone] | None = None  # set inside `shared_backbones()`


def get_backbone(name: str, **kwargs: object) -> Backbone:
    """A registered backbone in eval mode with frozen weights: a new one per call, or, inside
    `shared_backbones()`, the one already loaded for the same name and arguments."""
    global _loads
    key = (name, *sorted(kwargs.items()))
    if _shared is not None and key in _shared:
        return _shared[key]
    model = BACKBONES.build(name, **kwargs).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    _loads += 1
    if _shared is not None:
        _shared[key] = model
    return model


def backbone_loads() -> int:
    """How many backbones this process has built, each from its weights file."""
    return _loads


@contextmanager
def shared_backbones() -> Iterator[None]:
    """Within this block, `get_backbone` loads each backbone once and hands every caller the
    same module (the pipeline, the index's descriptors and an index build share one).

    Holders must not mutate it: no `.train()`, no changing weights in place, no moving it to
    another device or dtype than the other holders use (its `.to()` moves it for all of them).
    Computing in another layout or precision (channels-last inputs, autocast) is fine. Modules
    handed out stay usable after the block; nested blocks share the outer one's modules.
    """
    global _shared
    outer = _shared
    _shared = {} if outer is None else outer
    try:
        yield
    finally:
        _shared = outer


@lru_cache(maxsize=16)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return files.sha256_file(path)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Content hash of a weights file (cached per path, size and mtime)."""
    st = os.stat(path)
    return _sha256_cached(str(path), st.st_size, st.st_mtime_ns)


def require_file(path: str | os.PathLike[str] | None, *, what: str, how_to_get: str) -> Path:
    """`path` as a Path if it is a readable file, else a WeightsError that names the fix."""
    if path is None or not Path(path).is_file():
        raise WeightsError(f"{what}: weights file {path or '(none)'} not found. {how_to_get}")
    return Path(path)


def load_torch_state_dict(path: Path, *, what: str) -> dict[str, Tensor]:
    """`torch.load(weights_only=True)` with a clear error for unreadable or wrong files."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files
        with open(path, "rb") as file:
            reason = unreadable_reason(file.read(4), exc)
        raise WeightsError(f"{what}: cannot read weights file {path}: {reason}") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{what}: {path} does not hold a state dict")
    return state


def load_strict(model: nn.Module, state: dict[str, Tensor], *, what: str, path: Path) -> None:
    """Load weights strictly; a key or shape mismatch names the file instead of a torch trace."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise WeightsError(f"{what}: {path} does not match the architecture ({first})") from exc
