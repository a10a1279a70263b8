"""Bundled real color photos for tests, benchmarks and the offline demo.

The photos in ``photos/`` are small (long side <= 512 px) JPEG copies of photos shipped by
installed packages (scikit-image, scikit-learn, matplotlib, Debian ``opencv-doc`` and
``mate-backgrounds``). ``manifest.json`` records, for each one, its source package and file,
license, credit, size, scene (photos of the same scene from other viewpoints share it) and
category, plus the gray target / color reference pair used by ``chromaref demo``.
``photos/corpus/`` holds the reference corpus: smaller copies (long side <= 320 px) of photos of
people, places, water, sky, plants, animals, food and objects from Debian packages that no
training or evaluation set reads, listed under ``corpus`` in the manifest. The default index
(``--auto`` with no ``--index``) is built from the whole ``photos/`` tree; tests and benchmarks
use the core photos (``photos()``). ``python -m tools.make_assets`` rebuilds all of it.
This module reads the manifest; it only uses the standard library.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from itertools import combinations
from pathlib import Path
from typing import Any

__all__ = [
    "BundledPhoto",
    "corpus_photos",
    "demo_pair",
    "photo",
    "photos",
    "photos_dir",
    "same_scene_pairs",
]


@dataclass(frozen=True)
class BundledPhoto:
    """One bundled color photo and its manifest entry."""

    name: str
    path: Path
    source_package: str
    source_file: str
    license: str
    credit: str
    width: int
    height: int
    scene: str
    category: str


def _assets_dir() -> Path:
    root = files(__name__)
    if not isinstance(root, Path):
        raise RuntimeError(f"bundled photos must be installed as plain files, got {root!r}")
    return root


def photos_dir() -> Path:
    """The folder holding the bundled photo files."""
    return _assets_dir() / "photos"


@cache
def _manifest() -> dict[str, Any]:
    text = (_assets_dir() / "manifest.json").read_text(encoding="utf-8")
    manifest: dict[str, Any] = json.loads(text)
    return manifest


def _entries(key: str) -> tuple[BundledPhoto, ...]:
    folder = photos_dir()
    return tuple(
        BundledPhoto(
            name=entry["name"],
            path=folder / entry["file"],
            source_package=entry["source_package"],
            source_file=entry["source_file"],
            license=entry["license"],
            credit=entry["credit"],
            width=int(entry["width"]),
            height=int(entry["height"]),
            scene=entry["scene"],
            category=entry["category"],
        )
        for entry in _manifest().get(key, [])
    )


@cache
def _photos() -> tuple[BundledPhoto, ...]:
    return _entries("photos")


@cache
def _corpus() -> tuple[BundledPhoto, ...]:
    return _entries("corpus")


def photos() -> list[BundledPhoto]:
    """All bundled color photos, in manifest order (the demo's gray target is not one)."""
    return list(_photos())


def corpus_photos() -> list[BundledPhoto]:
    """The reference corpus photos (``photos/corpus/``), in manifest order."""
    return list(_corpus())


def photo(name: str) -> BundledPhoto:
    """The bundled photo called ``name`` (a file stem such as ``"aloe_l"``).

    Raises:
        KeyError: no bundled photo has that name; the message lists the available names.
    """
    for item in _photos():
        if item.name == name:
            return item
    available = ", ".join(sorted(p.name for p in _photos()))
    raise KeyError(f"no bundled photo named {name!r}; available: {available}")


def demo_pair() -> tuple[Path, Path]:
    """``(gray target, color reference)`` paths for the offline demo."""
    demo = _manifest()["demo"]
    folder = photos_dir()
    return folder / demo["target"], folder / demo["reference"]


def same_scene_pairs() -> list[tuple[BundledPhoto, BundledPhoto]]:
    """Every pair of distinct photos that show the same scene, in manifest order."""
    scenes: dict[str, list[BundledPhoto]] = {}
    for item in _photos():
        scenes.setdefault(item.scene, []).append(item)
    return [pair for group in scenes.values() for pair in combinations(group, 2)]
