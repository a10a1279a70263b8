"""Real evaluation sets from Debian packages, extracted into plain folders.

    python -m benchmarks.datasets labelled  --out data/labelled   # CLASS/*.webp photos
    python -m benchmarks.datasets paintings --out data/paintings  # non-natural: painting crops
    python -m benchmarks.datasets drawings  --out data/drawings   # non-natural: illustrations
    python -m benchmarks.datasets animation --out data/animation  # non-natural: cartoon frames

`labelled`: ~230 Wikimedia photos from `gcompris-qt-data` in 5 categories (animals, monuments,
fishes, tools, renewable energy), the only labelled real photos that install offline; the
ImageNet folder layout, so `chromaref index build` reads the labels. `paintings`: the 267
painting crops of the same package (WebMuseum, GPLv3). `drawings`: its 116 colored
illustrations of words (Art4Apps, CC-BY-SA-3.0). `animation`: frames of `Megamind.avi`
from `opencv-doc` (needs PyAV, in the `[dev]` extra). Every folder gets a SOURCES.md with the
package's own author / source / license records.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from benchmarks.qt_resources import read_qt_resources
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


class MissingSourceError(RuntimeError):
    """A Debian package the set comes from is not installed."""


def _bundle(name: str) -> Iterator[tuple[str, bytes]]:
    path = GCOMPRIS_RCC / f"{name}.rcc"
    if not path.is_file():
        raise MissingSourceError(f"{path} not found: install the Debian package gcompris-qt-data")
    return read_qt_resources(path)


def _extract(sources: list[tuple[str, str]], out: Path) -> tuple[int, list[str]]:
    """Copy the .webp files under each (bundle, folder) into `out`; returns count + READMEs."""
    out.mkdir(parents=True, exist_ok=True)
    count, notes = 0, []
    for bundle, folder in sources:
        prefix = f"/activities/{bundle}/{folder}/"
        for path, data in _bundle(bundle):
            if prefix not in path:
                continue
            if path.endswith(".webp"):
                (out / Path(path).name).write_bytes(data)
                count += 1
            elif path.endswith("/README"):
                notes.append(f"## {bundle}: {path.split(prefix)[1]}\n\n{data.decode()}")
    return count, notes


def _write_sources(out: Path, package: str, notes: list[str]) -> None:
    header = f"# Sources\n\nExtracted from the Debian package `{package}`; its records follow.\n"
    (out / "SOURCES.md").write_text("\n".join([header, *notes]))


def labelled(out: Path) -> None:
    notes = []
    for category, sources in LABELLED.items():
        count, category_notes = _extract(sources, out / category)
        notes += category_notes
        print(f"{category}: {count} photos")
    _write_sources(out, "gcompris-qt-data", notes)


def paintings(out: Path) -> None:
    count, notes = _extract([("paintings", "resource/image")], out)
    _write_sources(out, "gcompris-qt-data", notes)
    print(f"paintings: {count} crops")


def drawings(out: Path) -> None:
    count, _ = _extract([("lang", "resource/words_sample")], out)
    _write_sources(
        out,
        "gcompris-qt-data",
        [
            "Files: src/activities/lang/resource/words_sample/* (debian/copyright)\n"
            "Copyright: Arts4Apps project http://www.art4apps.org/\nLicense: CC-BY-SA-3.0\n"
        ],
    )
    print(f"drawings: {count} illustrations")


def animation(out: Path, every: int = 6) -> None:
    """Every `every`-th frame of Megamind.avi as PNG, leaving out frames with (almost) no color
    (fades to black): there is nothing to recover in them, nor to take as a reference."""
    try:
        import av
    except ImportError as error:
        raise MissingSourceError("PyAV is needed to read video: pip install -e '.[dev]'") from error
    if not MEGAMIND.is_file():
        raise MissingSourceError(f"{MEGAMIND} not found: install the Debian package opencv-doc")
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    with av.open(str(MEGAMIND)) as container:
        for n, frame in enumerate(container.decode(video=0)):
            image = frame.to_image() if n % every == 0 else None
            if image is not None and colorfulness(np.asarray(image)) >= 5.0:
                image.save(out / f"megamind_{n:04d}.png")
                count += 1
    (out / "SOURCES.md").write_text(
        "# Sources\n\nFrames of `Megamind.avi` (a trailer clip shipped as an OpenCV sample), "
        "from the Debian package `opencv-doc` (`/usr/share/doc/opencv-doc/copyright`).\n"
    )
    print(f"animation: {count} frames")


SETS = {
    "labelled": labelled,
    "paintings": paintings,
    "drawings": drawings,
    "animation": animation,
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
