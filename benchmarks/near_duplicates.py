"""Content checks that keep evaluation images out of the training set.

Excluding files by name is not enough: the same photo ships in several packages, resized,
re-encoded or mirrored. Each image is reduced to a fingerprint: its gray version box-averaged to
32 x 32 (zero mean, unit norm) for the structure, and its CIELAB a, b box-averaged to 8 x 8 for
the colors. Two images are near-duplicates when the structures correlate at `THRESHOLD` or more
and the colors differ by at most `MAX_AB_DIFF` on average, the second image taken as it is or
mirrored. Measured on the bundled photos against their sources: resized, re-encoded and mirrored
copies correlate at 0.995 or more, with colors within 0.3. Other photos of one landmark and
unrelated photos stay under 0.87; two different objects cut out on white can correlate at 0.94
(their silhouettes), which the color test tells apart (5 and more). A crop is not a resized copy
and this check does not find one.

The references are every image an evaluation reads (`benchmarks.datasets`: the whole gcompris
bundles of the labelled, painting and drawing sets, the Megamind.avi frames) and every bundled
photo (`chromaref.platform.assets`: the quality benchmark and the default reference corpus).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.color import rgb2lab

from benchmarks import datasets
from chromaref.platform.assets import photos_dir
from chromaref.platform.images import IMAGE_SUFFIXES, load_image

logger = logging.getLogger(__name__)

SIDE = 32
COLOR_SIDE = 8
THRESHOLD = 0.9
MAX_AB_DIFF = 3.0


def fingerprint(rgb: np.ndarray) -> np.ndarray:
    """(SIDE**2 + 2 * COLOR_SIDE**2,) float32: the gray image box-averaged to SIDE x SIDE with
    zero mean and unit norm (all zeros when flat: it then matches nothing), then the CIELAB a, b
    of the image box-averaged to COLOR_SIDE x COLOR_SIDE."""
    image = Image.fromarray(rgb)
    gray = np.asarray(image.convert("L").resize((SIDE, SIDE), Image.Resampling.BOX), np.float32)
    structure = gray.ravel() - gray.mean()
    norm = float(np.linalg.norm(structure))
    structure = structure / norm if norm > 1e-3 else np.zeros_like(structure)
    small = np.asarray(image.resize((COLOR_SIDE, COLOR_SIDE), Image.Resampling.BOX))
    color = rgb2lab(small)[..., 1:].astype(np.float32).ravel()
    return np.concatenate([structure, color])


def _mirrored(prints: np.ndarray) -> np.ndarray:
    n = len(prints)
    structure = prints[:, : SIDE * SIDE].reshape(n, SIDE, SIDE)[:, :, ::-1]
    color = prints[:, SIDE * SIDE :].reshape(n, COLOR_SIDE, COLOR_SIDE, 2)[:, :, ::-1]
    return np.concatenate([structure.reshape(n, -1), color.reshape(n, -1)], axis=1)


@dataclass(frozen=True)
class Match:
    """The closest fingerprint: its name, the gray correlation, the mean |a, b| difference."""

    name: str | None
    correlation: float
    ab_diff: float

    @property
    def duplicate(self) -> bool:
        return self.correlation >= THRESHOLD and self.ab_diff <= MAX_AB_DIFF


@dataclass
class Fingerprints:
    """Named fingerprints to compare new images with, as they are and mirrored."""

    names: list[str] = field(default_factory=list)
    _rows: list[np.ndarray] = field(default_factory=list)
    _both: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, name: str, print_: np.ndarray) -> None:
        self.names.append(name)
        self._rows.append(print_)
        self._both = None

    def __len__(self) -> int:
        return len(self.names)

    def best(self, print_: np.ndarray) -> Match:
        """The duplicate with the highest correlation, else the highest correlation of all."""
        if not self.names:
            return Match(None, 0.0, float("inf"))
        if self._both is None:
            plain = np.stack(self._rows)
            self._both = (plain, _mirrored(plain))
        cut = SIDE * SIDE
        scores = []
        for prints in self._both:
            correlation = prints[:, :cut] @ print_[:cut]
            ab_diff = np.abs(prints[:, cut:] - print_[cut:]).mean(axis=1)
            scores.append((correlation, ab_diff))
        (c0, d0), (c1, d1) = scores
        correlation, ab_diff = np.where(c1 > c0, c1, c0), np.where(c1 > c0, d1, d0)
        duplicates = (correlation >= THRESHOLD) & (ab_diff <= MAX_AB_DIFF)
        ranked = np.where(duplicates, correlation + 2.0, correlation)  # duplicates first
        at = int(np.argmax(ranked))
        return Match(self.names[at], float(correlation[at]), float(ab_diff[at]))


def _decoded(data: bytes, name: str) -> np.ndarray:
    return load_image(data, name=name).rgb


def evaluation_images(*, bundled_corpus: bool = True) -> Iterator[tuple[str, np.ndarray]]:
    """`(name, RGB)` of every image an evaluation or benchmark uses, and of the bundled
    reference corpus unless `bundled_corpus` is False (for the tool that rebuilds it); a
    source whose package is missing is logged and left out (nothing of it can then reach the
    training set either)."""
    for path in sorted(photos_dir().rglob("*")):
        in_corpus = path.parent != photos_dir()
        if path.suffix.lower() in IMAGE_SUFFIXES and (bundled_corpus or not in_corpus):
            yield f"bundled:{path.relative_to(photos_dir()).as_posix()}", load_image(path).rgb
    for bundle in sorted({bundle for bundle, _ in datasets.EVALUATION_SOURCES}):
        try:
            files = datasets.bundle_files(bundle)
        except datasets.MissingSourceError as error:
            logger.warning("evaluation bundle %s not checked: %s", bundle, error)
            continue
        for path, data in files:
            if Path(path).suffix.lower() in IMAGE_SUFFIXES:
                yield f"gcompris:{bundle}:{path.split('/activities/')[-1]}", _decoded(data, path)
    try:
        for n, frame in datasets.animation_frames():
            yield f"opencv-doc:Megamind.avi#{n}", np.asarray(frame.convert("RGB"))
    except datasets.MissingSourceError as error:
        logger.warning("Megamind.avi frames not checked: %s", error)


def evaluation_fingerprints(*, bundled_corpus: bool = True) -> Fingerprints:
    """Fingerprints of `evaluation_images(bundled_corpus=...)`."""
    refs = Fingerprints()
    for name, rgb in evaluation_images(bundled_corpus=bundled_corpus):
        refs.add(name, fingerprint(rgb))
    return refs
