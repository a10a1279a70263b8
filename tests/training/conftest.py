"""Training fixtures: a dozen real photos (plus a gray and a corrupt file) and a tiny config."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

# The smallest network and data that still run every part of training: seconds per step.
_TINY: dict[str, Any] = {
    "model_options": {"width": 8, "depths": [1, 1, 1, 1], "middle_blocks": 0, "feature_reduce": 8},
    "matching": {"working_size": 64},
    "batch_size": 2,
    "log_every": 1,
    "data": {"max_val_images": 1},
}


@pytest.fixture(scope="session")
def train_corpus(tmp_path_factory) -> Path:
    """12 bundled color photos, a gray photo and a corrupt file (both must be skipped)."""
    from chromaref.platform.assets import photos

    root = tmp_path_factory.mktemp("train_corpus")
    color = [p for p in photos() if p.path.suffix == ".jpg"][:12]
    for p in color:
        shutil.copy(p.path, root / p.path.name)
    Image.open(color[0].path).convert("L").save(root / "gray.png")
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    return root


@pytest.fixture
def tiny() -> dict[str, Any]:
    """Training settings for tests: a ~20k-parameter ColorNet on 64 px crops."""
    return copy.deepcopy(_TINY)
