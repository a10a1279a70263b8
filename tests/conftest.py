"""Shared fixtures: deterministic RNG, two CPU threads like CI, models loaded once, and a
small real corpus."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

# OpenMP threads (FAISS, torch) busy-wait by default, which stalls everything on a loaded
# 2-core machine; set before either library is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pytest
import torch
from PIL import Image

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def prevent_leaking_rng():
    """Each test starts from, and leaves behind, the same RNG states."""
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()
    py_state = random.getstate()
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    yield
    torch.set_rng_state(torch_state)
    np.random.set_state(np_state)
    random.setstate(py_state)


@pytest.fixture(scope="session")
def lite0():
    from chromaref.platform.models import get_backbone

    return get_backbone("efficientnet_lite0")


@pytest.fixture(scope="session")
def pipeline():
    from chromaref.platform.pipeline import ColorizationPipeline

    return ColorizationPipeline(device="cpu")


@pytest.fixture(scope="session")
def training_free_pipeline():
    from chromaref.platform.config import PipelineConfig
    from chromaref.platform.pipeline import ColorizationPipeline

    return ColorizationPipeline(PipelineConfig(colorizer="training-free"), device="cpu")


@pytest.fixture(scope="session")
def photo_rgb():
    """Bundled real photos by name, as (H, W, 3) uint8 arrays."""
    from chromaref.platform.assets import photo
    from chromaref.platform.images import load_image

    def load(name: str) -> np.ndarray:
        return load_image(photo(name).path).rgb

    return load


CLASSES = ("animal", "food", "building", "nature")


def make_corpus(root: Path, *, per_class: int = 3, extras: bool = True) -> Path:
    """ImageNet-style CLASS/*.jpg of real photos; with extras: a gray photo, a corrupt file,
    and a byte-identical duplicate (all three must be skipped with a reason)."""
    from chromaref.platform.assets import photos

    for category in CLASSES:
        chosen = [p for p in photos() if p.category == category][:per_class]
        (root / category).mkdir(parents=True, exist_ok=True)
        for p in chosen:
            shutil.copy(p.path, root / category / p.path.name)
    if extras:
        first = next((root / CLASSES[0]).iterdir())
        shutil.copy(first, root / CLASSES[0] / f"copy_of_{first.name}")
        Image.open(first).convert("L").save(root / CLASSES[1] / "gray.png")
        (root / CLASSES[2] / "corrupt.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return root


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def local_index(corpus, tmp_path_factory) -> Path:
    """An index of the shared corpus, built once in-process."""
    from chromaref.retrieval.build import BuildConfig, build_index

    out = tmp_path_factory.mktemp("indexes") / "local"
    build_index(corpus, out, config=BuildConfig(runner="local", shard_size=4))
    return out


@pytest.fixture(scope="session")
def browser():
    """A real headless Chromium (Debian's), driven by Playwright.

    Skips where no Chromium is installed, except under CHROMAREF_REQUIRE_BROWSER=1 (CI sets
    it): there a missing browser fails the run instead of hiding the tests.
    """
    binary = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    if binary is None:
        message = "no chromium on PATH (Debian: apt-get install chromium)"
        if os.environ.get("CHROMAREF_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # root in a container: no sandbox; small /dev/shm there too
        args = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking"]
        chromium = playwright.chromium.launch(executable_path=binary, headless=True, args=args)
        yield chromium
        chromium.close()
