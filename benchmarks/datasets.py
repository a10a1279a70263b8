"""Real evaluation sets from Debian packages, extracted into plain folders.

    python -m benchmarks.datasets labelled  --out data/labelled   # CLASS/*.webp photos
    python -m benchmarks.datasets paintings --out data/paintings  # non-natural: painting crops
    python -m benchmarks.datasets drawings  --out data/drawings   # non-natural: illustrations
    python -m benchmarks.datasets animation --out data/animation  # non-natural: cartoon frames
    python -m benchmarks.datasets training  --out data/training   # photos to train on (no eval)

`labelled`: ~230 Wikimedia photos from `gcompris-qt-data` in 5 categories (animals, monuments,
fishes, tools, renewable energy), the only labelled real photos that install offline; the
ImageNet folder layout, so `chromaref index build` reads the labels. `paintings`: the 267
painting crops of the same package (WebMuseum, GPLv3). `drawings`: its 116 colored
illustrations of words (Art4Apps, CC-BY-SA-3.0). `animation`: frames of `Megamind.avi`
from `opencv-doc` (needs PyAV, in the `[dev]` extra). Every folder gets a SOURCES.md with the
package's own author / source / license records. `training`: the photos the colorization
sub-net trains on, with every image above (and every bundled photo) kept out by source and by
content; see `benchmarks.training_set`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.qt_resources import read_qt_resources
from chromaref.platform.files import atomic_path, atomic_write_text
from chromaref.platform.metrics import colorfulness

GCOMPRIS_RCC = Path("/usr/share/gcompris-qt/rcc")
MEGAMIND = Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")

# category -> (bundle, folder inside the bundle's resources) pairs holding its photos
LABELLED = {
    "animals": [
        ("erase", "resource"),
        ("explore_world_animals", "resource/animals"),
        ("explore_farm_animals", "resource/animals"),
    ],
    "monuments": [
        ("categorization", "resource/images/monuments"),
        ("explore_monuments", "resource"),
    ],
    "fishes": [("categorization", "resource/images/fishes")],
    "tools": [("categorization", "resource/images/tools")],
    "renewable": [("categorization", "resource/images/renewable")],
}
PAINTINGS = [("paintings", "resource/image")]
DRAWINGS = [("lang", "resource/words_sample")]
# every (bundle, folder) an evaluation set reads: the training set takes nothing from these bundles
EVALUATION_SOURCES = [
    *(pair for pairs in LABELLED.values() for pair in pairs),
    *PAINTINGS,
    *DRAWINGS,
]
ANIMATION_EVERY = 6


class MissingSourceError(RuntimeError):
    """A Debian package the set comes from is not installed."""


def bundle_files(bundle: str, folder: str = "") -> Iterator[tuple[str, bytes]]:
    """`(resource path, bytes)` of every file of a gcompris bundle under `resource/...` `folder`.

    Raises:
        MissingSourceError: gcompris-qt-data is not installed.
    """
    path = GCOMPRIS_RCC / f"{bundle}.rcc"
    if not path.is_file():
        raise MissingSourceError(f"{path} not found: install the Debian package gcompris-qt-data")
    prefix = f"/activities/{bundle}/{folder}".rstrip("/") + "/"
    return ((name, data) for name, data in read_qt_resources(path) if prefix in name)


def _extract(sources: list[tuple[str, str]], out: Path) -> tuple[int, list[str]]:
    """Copy the .webp files under each (bundle, folder) into `out`; returns count + READMEs."""
    out.mkdir(parents=True, exist_ok=True)
    count, notes = 0, []
    for bundle, folder in sources:
        for path, data in bundle_files(bundle, folder):
            if path.endswith(".webp"):
                with atomic_path(out / Path(path).name) as tmp:
                    tmp.write_bytes(data)
                count += 1
            elif path.endswith("/README"):
                where = path.split(f"/activities/{bundle}/{folder}/")[1]
                notes.append(f"## {bundle}: {where}\n\n{data.decode()}")
    return count, notes


def _write_sources(out: Path, package: str, notes: list[str]) -> None:
    header = f"# Sources\n\nExtracted from the Debian package `{package}`; its records follow.\n"
    atomic_write_text(out / "SOURCES.md", "\n".join([header, *notes]))


def labelled(out: Path) -> None:
    notes = []
    for category, sources in LABELLED.items():
        count, category_notes = _extract(sources, out / category)
        notes += category_notes
        print(f"{category}: {count} photos")
    _write_sources(out, "gcompris-qt-data", notes)


def paintings(out: Path) -> None:
    count, notes = _extract(PAINTINGS, out)
    _write_sources(out, "gcompris-qt-data", notes)
    print(f"paintings: {count} crops")


def drawings(out: Path) -> None:
    count, _ = _extract(DRAWINGS, out)
    _write_sources(
        out,
        "gcompris-qt-data",
        [
            "Files: src/activities/lang/resource/words_sample/* (debian/copyright)\n"
            "Copyright: Arts4Apps project http://www.art4apps.org/\nLicense: CC-BY-SA-3.0\n"
        ],
    )
    print(f"drawings: {count} illustrations")


def animation_frames(every: int = ANIMATION_EVERY) -> Iterator[tuple[int, Image.Image]]:
    """`(frame number, RGB image)` of every `every`-th frame of Megamind.avi.

    Raises:
        MissingSourceError: PyAV or opencv-doc is not installed.
    """
    try:
        import av
    except ImportError as error:
        raise MissingSourceError("PyAV is needed to read video: pip install -e '.[dev]'") from error
    if not MEGAMIND.is_file():
        raise MissingSourceError(f"{MEGAMIND} not found: install the Debian package opencv-doc")
    with av.open(str(MEGAMIND)) as container:
        for n, frame in enumerate(container.decode(video=0)):
            if n % every == 0:
                yield n, frame.to_image()


def animation(out: Path, every: int = ANIMATION_EVERY) -> None:
    """Every `every`-th frame of Megamind.avi as PNG, leaving out frames with (almost) no color
    (fades to black): there is nothing to recover in them, nor to take as a reference."""
    count = 0
    for n, image in animation_frames(every):
        if colorfulness(np.asarray(image)) >= 5.0:
            with atomic_path(out / f"megamind_{n:04d}.png") as tmp:
                image.save(tmp, format="PNG")
            count += 1
    atomic_write_text(
        out / "SOURCES.md",
        "# Sources\n\nFrames of `Megamind.avi` (a trailer clip shipped as an OpenCV sample), "
        "from the Debian package `opencv-doc` (`/usr/share/doc/opencv-doc/copyright`).\n",
    )
    print(f"animation: {count} frames")


def training(out: Path) -> None:
    # imported here: the training set is built against the evaluation sets defined above
    from benchmarks.training_set import build

    build(out)


SETS = {
    "labelled": labelled,
    "paintings": paintings,
    "drawings": drawings,
    "animation": animation,
    "training": training,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", choices=sorted(SETS))
    parser.add_argument("--out", type=Path, required=True, help="folder to write the images to")
    args = parser.parse_args()
    try:
        SETS[args.set](args.out)
    except MissingSourceError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
