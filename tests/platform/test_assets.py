"""The bundled photos are real, small, colorful, licensed and match their manifest; the
reference corpus shares nothing with the training or evaluation images."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.color import lab2rgb, rgb2lab

from chromaref.platform.assets import (
    BundledPhoto,
    corpus_photos,
    demo_pair,
    photo,
    photos,
    photos_dir,
    same_scene_pairs,
)

MAX_SIDE = 512
CORPUS_MAX_SIDE = 320
MIN_CHROMA = 5.0
MAX_TOTAL_BYTES = 6 * 1024 * 1024
CATEGORIES = {"animal", "person", "food", "object", "scene", "nature", "building", "painting"}
CORPUS_CATEGORIES = CATEGORIES | {"interior", "water", "sky"}
ALL = photos()
CORPUS = corpus_photos()


def _manifest() -> dict:
    return json.loads((photos_dir().parent / "manifest.json").read_text(encoding="utf-8"))


def _mean_chroma(rgb: np.ndarray) -> float:
    lab = rgb2lab(rgb)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def test_manifest_shape():
    manifest = _manifest()
    assert manifest["version"] == 1
    names = [entry["name"] for entry in manifest["photos"]]
    assert len(names) == len(set(names)) == len(ALL) >= 20
    assert set(manifest["demo"]) == {"target", "target_source", "reference"}


@pytest.mark.parametrize("item", ALL, ids=lambda p: p.name)
def test_photo_matches_manifest_and_is_colorful(item: BundledPhoto):
    assert item.path.is_file()
    assert item.path.parent == photos_dir()
    with Image.open(item.path) as image:
        assert image.format == "JPEG"
        assert image.mode == "RGB"
        assert image.size == (item.width, item.height)
        assert "exif" not in image.info
        rgb = np.asarray(image)
    assert max(item.width, item.height) <= MAX_SIDE
    assert _mean_chroma(rgb) > MIN_CHROMA, f"{item.name} is nearly colorless"


@pytest.mark.parametrize("item", ALL, ids=lambda p: p.name)
def test_sources_and_licenses_recorded(item: BundledPhoto):
    for field in ("name", "source_package", "source_file", "license", "credit", "scene"):
        assert str(getattr(item, field)).strip(), f"{item.name}: empty {field}"
    assert item.category in CATEGORIES
    assert item.path.stem == item.name


def test_same_scene_pairs():
    pairs = same_scene_pairs()
    assert len(pairs) >= 5
    for a, b in pairs:
        assert a.scene == b.scene and a.name != b.name
    assert {"aloe_l", "aloe_r"} in [{a.name, b.name} for a, b in pairs]


def test_demo_pair_is_gray_target_and_color_reference():
    target, reference = demo_pair()
    assert target.is_file() and reference.is_file()
    demo = _manifest()["demo"]
    source = photo(demo["target_source"])
    with Image.open(target) as gray:
        assert gray.mode == "L"
        assert gray.size == (source.width, source.height)
        gray_values = np.asarray(gray).astype(np.float64)
    with Image.open(source.path) as color:
        lab = rgb2lab(np.asarray(color.convert("RGB")))
    lab[..., 1:] = 0.0
    expected = lab2rgb(lab)[..., 0] * 255.0
    assert np.abs(gray_values - expected).max() <= 1.0, "target is not the CIELAB L of its source"
    assert reference == photo(reference.stem).path


def test_photo_lookup():
    assert photo("aloe_l").scene == photo("aloe_r").scene
    with pytest.raises(KeyError, match=r"available: .*aloe_l"):
        photo("no_such_photo")


def test_photos_returns_a_copy():
    photos().clear()
    assert photos() == ALL


def test_total_size_under_budget():
    total = sum(p.stat().st_size for p in photos_dir().rglob("*") if p.is_file())
    assert total < MAX_TOTAL_BYTES


def test_manifest_lists_exactly_the_files_present():
    manifest = _manifest()
    listed = [e["file"] for e in manifest["photos"] + manifest["corpus"]]
    listed.append(manifest["demo"]["target"])
    present = [p.relative_to(photos_dir()).as_posix() for p in photos_dir().rglob("*")]
    assert sorted(listed) == sorted(f for f in present if "." in Path(f).name)
    assert len(CORPUS) >= 170 and len(ALL) + len(CORPUS) >= 200  # "a few hundred" photos
    names = [p.name for p in ALL + CORPUS]
    assert len(names) == len(set(names))


def test_corpus_is_diverse_with_people():
    categories = [p.category for p in CORPUS]
    assert categories.count("person") >= 10
    assert {"animal", "food", "nature", "water", "sky", "interior"} <= set(categories)


@pytest.mark.parametrize("item", CORPUS, ids=lambda p: p.name)
def test_corpus_photo_is_small_colorful_and_licensed(item: BundledPhoto):
    assert item.path.parent == photos_dir() / "corpus"
    with Image.open(item.path) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (item.width, item.height))
        assert "exif" not in image.info
        rgb = np.asarray(image)
    assert max(item.width, item.height) <= CORPUS_MAX_SIDE
    assert _mean_chroma(rgb) > MIN_CHROMA
    for field in ("source_package", "source_file", "license", "credit"):
        assert str(getattr(item, field)).strip(), f"{item.name}: empty {field}"
    assert item.source_package.endswith("(Debian)")
    assert item.source_file.startswith("/usr/share/")
    assert item.category in CORPUS_CATEGORIES


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.slow
def test_no_bundled_file_is_an_evaluation_or_training_file():
    """By content hash against every evaluation image and training candidate file, and by
    near-duplicate fingerprint against every evaluation image."""
    datasets = pytest.importorskip("benchmarks.datasets")
    from benchmarks import near_duplicates, training_sources

    bundled = {_sha256(p.read_bytes()): p.name for p in photos_dir().rglob("*.jpg")}
    others: set[str] = set()
    bundles = {b for b, _ in datasets.EVALUATION_SOURCES} | set(training_sources.GCOMPRIS_PHOTOS)
    try:
        for bundle in sorted(bundles):
            others |= {_sha256(data) for _, data in datasets.bundle_files(bundle)}
    except datasets.MissingSourceError as error:
        pytest.skip(str(error))
    for reader in (training_sources.tuxpaint, training_sources.mate, training_sources.opencv):
        others |= {_sha256(Path(c.original).read_bytes()) for c in reader()}
    assert len(others) > 500
    assert not set(bundled) & others

    references = near_duplicates.Fingerprints()
    for name, rgb in near_duplicates.evaluation_images():
        if not name.startswith("bundled:"):
            references.add(name, near_duplicates.fingerprint(rgb))
    for item in CORPUS:
        with Image.open(item.path) as image:
            match = references.best(near_duplicates.fingerprint(np.asarray(image)))
        assert not match.duplicate, f"{item.name} duplicates {match.name}"
