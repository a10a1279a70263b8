"""The training photo set: what is taken, what is kept out, the split and the records.

The builds here run on the photos every install has (scikit-image's, from PyPI) with the Debian
packages made absent, so they are the same in CI and on a machine that has those packages; the
Debian readers are checked on their own where the package is installed.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageOps
from skimage.color import lab2rgb, rgb2lab

from benchmarks import datasets, training_set, training_sources
from benchmarks.near_duplicates import Fingerprints, fingerprint
from benchmarks.training_sources import READERS, Candidate
from chromaref.platform.assets import photos, photos_dir
from chromaref.retrieval.corpus import list_corpus

SKIMAGE_DATA = Path(skimage.data.__file__).parent
DEBIAN_READERS = [name for name in READERS if name != "scikit-image"]


@pytest.fixture
def no_debian(tmp_path, monkeypatch):
    """Every Debian package absent, as in CI (which installs only chromium)."""
    absent = tmp_path / "absent"
    monkeypatch.setattr(training_sources, "DOC", absent)
    monkeypatch.setattr(datasets, "GCOMPRIS_RCC", absent)
    monkeypatch.setattr(datasets, "MEGAMIND", absent / "Megamind.avi")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _gray16(path: Path, mirror: bool = False) -> np.ndarray:
    """A check independent of the builder's fingerprint: 16 x 16 gray, zero mean, unit norm."""
    with Image.open(path) as image:
        gray = image.convert("L").resize((16, 16), Image.Resampling.BILINEAR)
    v = np.asarray(ImageOps.mirror(gray) if mirror else gray, np.float64).ravel()
    v -= v.mean()
    return v / np.linalg.norm(v)


def _written(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*.jpg")}


def test_pypi_photos_build_the_set_and_missing_packages_are_named(tmp_path, no_debian):
    out = tmp_path / "training"
    record = training_set.build(out)

    for name in DEBIAN_READERS:
        assert "install the Debian package" in record["skipped_sources"][name]
    assert "gcompris-qt-data" in record["skipped_sources"]["gcompris-qt-data"]
    files = [entry["file"] for entry in record["files"]]
    assert files and all(f.startswith("scikit-image/") for f in files)
    assert _written(out) == set(files)
    # hubble_deep_field is a real photo, but black sky with dots: below the chroma rule
    reasons = {Path(x["original"]).name: x["reason"] for x in record["excluded"]}
    assert reasons["hubble_deep_field.jpg"].startswith("nearly colorless")

    bundled = [p for p in photos_dir().iterdir() if p.suffix in {".jpg", ".png"}]
    bundled_sha = {_sha256(p) for p in bundled}
    bundled_gray = np.stack([_gray16(p, mirror) for p in bundled for mirror in (False, True)])
    for file in files:
        assert _sha256(out / file) not in bundled_sha
        assert float((bundled_gray @ _gray16(out / file)).max()) < 0.95, file
        with Image.open(out / file) as image:
            assert min(image.size) >= training_set.MIN_SIDE
            assert max(image.size) <= training_set.MAX_SIDE

    sources_md = (out / "SOURCES.md").read_text(encoding="utf-8")
    for entry in record["files"]:
        line = f"`{entry['file']}` <- `{entry['original']}` ({entry['package']}) [{entry['split']}]"
        assert line in sources_md
    assert "CC0" in sources_md  # retina's license, as scikit-image's docstring states it
    assert "tuxpaint-stamps-default: " in sources_md  # the missing packages are listed

    corpus = list_corpus(out)  # the layout `chromaref train --corpus` reads
    assert sorted(Path(item.uri).relative_to(out).as_posix() for item in corpus) == sorted(files)
    assert {item.label for item in corpus} == {"scikit-image"}


@pytest.mark.slow
def test_rebuild_is_identical(tmp_path, no_debian):
    first, second = tmp_path / "a", tmp_path / "b"
    training_set.build(first)
    training_set.build(second)
    assert (first / "split.json").read_bytes() == (second / "split.json").read_bytes()
    assert {f: _sha256(first / f) for f in _written(first)} == {
        f: _sha256(second / f) for f in _written(second)
    }


def test_a_rerun_removes_what_it_no_longer_takes(tmp_path, no_debian):
    out = tmp_path / "out"
    training_set.build(out)
    (out / "notes.txt").write_text("kept: not written by the builder")
    only_ihc = {"ihc": lambda: (c for c in training_sources.scikit_image() if c.name == "ihc")}
    record = training_set.build(out, readers=only_ihc)
    assert [e["file"] for e in record["files"]] == ["scikit-image/ihc.jpg"]
    assert _written(out) == {"scikit-image/ihc.jpg"} and (out / "notes.txt").is_file()


def test_files_of_one_group_fall_on_one_side(tmp_path, no_debian):
    def tiles() -> list[Candidate]:
        out = []
        for photo, boxes in {
            "retina.jpg": [(300, 300, 700, 700), (700, 300, 1100, 700), (500, 700, 900, 1100)],
            "ihc.png": [(0, 0, 512, 170), (0, 170, 512, 340), (0, 340, 512, 512)],
        }.items():
            with Image.open(SKIMAGE_DATA / photo) as image:
                for n, box in enumerate(boxes):
                    out.append(
                        _candidate(f"{photo}_{n}", "test", image.convert("RGB").crop(box), photo)
                    )
        return out

    record = training_set.build(tmp_path / "out", readers={"test": lambda: iter(tiles())})
    sides: dict[str, set[str]] = {}
    for entry in record["files"]:
        sides.setdefault(entry["group"], set()).add(entry["split"])
    assert len(record["files"]) == 6
    assert set(sides) == {"retina.jpg", "ihc.png"}
    assert all(len(s) == 1 for s in sides.values())
    assert set.union(*sides.values()) == {"train", "val"}
    train = {e["file"] for e in record["files"] if e["split"] == "train"}
    val = {e["file"] for e in record["files"] if e["split"] == "val"}
    assert not train & val and train | val == _written(tmp_path / "out")


def test_split_groups_is_stable_about_a_tenth_and_never_empty():
    groups = [f"opencv-doc:photo{n}.jpg" for n in range(2000)]
    sides = training_set.split_groups(groups)
    assert sides == training_set.split_groups(reversed(groups))
    assert 0.08 < sum(s == "val" for s in sides.values()) / len(groups) < 0.12
    # a group keeps its side when others come or go
    assert training_set.split_groups(groups[:300]) == {g: sides[g] for g in groups[:300]}
    assert "val" in training_set.split_groups(groups[:2]).values()


def _candidate(name: str, package: str, image: Image.Image, original: str) -> Candidate:
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=80)
    data = buffer.getvalue()
    return Candidate(
        "test", name, package, original, "record", original, lambda: Image.open(io.BytesIO(data))
    )


def test_bundled_photos_are_kept_out_by_source_and_by_content(tmp_path, no_debian):
    chelsea = next(p for p in photos() if p.name == "chelsea")
    with Image.open(chelsea.path) as image:
        copy = ImageOps.mirror(image.convert("RGB")).resize((300, 200), Image.Resampling.LANCZOS)
    with Image.open(SKIMAGE_DATA / "retina.jpg") as image:
        retina_copy = image.convert("RGB").resize((700, 700), Image.Resampling.LANCZOS)

    def reader():
        yield from training_sources.scikit_image()
        astronaut = SKIMAGE_DATA / "astronaut.png"  # the very file a bundled photo is made of
        yield Candidate("test", "astronaut", "scikit-image (PyPI)", str(astronaut), "", "a",
                        lambda: Image.open(astronaut))  # fmt: skip
        yield _candidate("cat", "another package", copy, "elsewhere/cat.webp")
        yield _candidate("retina_small", "another package", retina_copy, "elsewhere/retina.webp")

    record = training_set.build(tmp_path / "out", readers={"test": reader})
    why = {Path(x["original"]).name: x for x in record["excluded"]}
    assert why["astronaut.png"]["reason"] == "bundled photo source"
    assert why["cat.webp"]["reason"] == "evaluation near-duplicate"
    assert why["cat.webp"]["match"] == "bundled:chelsea.jpg"
    assert why["retina.webp"]["reason"] == "duplicate"
    assert why["retina.webp"]["match"] == "scikit-image/retina.jpg"
    assert {Path(e["file"]).stem for e in record["files"]} == {"ihc", "retina"}


def test_near_duplicates_need_the_same_structure_and_colors(photo_rgb):
    known = Fingerprints()
    for name in ("chelsea", "coffee", "apple", "orange"):
        known.add(name, fingerprint(photo_rgb(name)))
    shrunk = np.asarray(Image.fromarray(photo_rgb("orange")).resize((120, 90)))
    assert known.best(fingerprint(shrunk)).duplicate
    assert known.best(fingerprint(shrunk)).name == "orange"
    # the same lightness in the opposite colors (a and b negated) is another photo
    lab = rgb2lab(photo_rgb("orange"))
    lab[..., 1:] *= -1
    recolored = np.clip(np.rint(lab2rgb(lab) * 255), 0, 255).astype(np.uint8)
    match = known.best(fingerprint(recolored))
    assert match.correlation > 0.9 and not match.duplicate
    assert not known.best(fingerprint(photo_rgb("butterfly"))).duplicate


def test_cut_outs_are_cropped_to_the_object_on_white():
    with Image.open(SKIMAGE_DATA / "retina.jpg") as image:
        rgb = np.asarray(image.convert("RGB"))
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[300:900, 400:1000] = 255  # the object: a 600 x 600 square of the photo
    rgba = Image.fromarray(np.dstack([rgb, alpha]))
    prepared, mask = training_set.prepare(rgba)
    margin = round(training_set.ALPHA_MARGIN * 600)
    assert prepared.mode == "RGB" and prepared.size == (600 + 2 * margin,) * 2
    assert np.asarray(prepared)[0, 0].tolist() == [255, 255, 255]
    assert training_set.object_chroma(prepared, mask) > training_set.mean_chroma(
        np.asarray(prepared)
    )


@pytest.mark.parametrize("name", DEBIAN_READERS)
def test_installed_debian_sources_give_records_and_never_an_evaluation_bundle(name):
    try:
        candidates = list(READERS[name]())
    except datasets.MissingSourceError as error:
        pytest.skip(str(error))
    assert candidates
    evaluated = {bundle for bundle, _ in datasets.EVALUATION_SOURCES}
    for candidate in candidates:
        assert "License" in candidate.record or "license" in candidate.record, candidate
        assert candidate.original.split(".rcc:")[0] not in evaluated
