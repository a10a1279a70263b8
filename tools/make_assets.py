"""Rebuild the bundled color photos in ``platform/assets/`` from installed packages.

Two sets. The core photos (``photos/``: tests, benchmarks, the demo) come from packages that
are installed the ordinary way (PyPI: scikit-image, scikit-learn, matplotlib; Debian:
``opencv-doc``, ``mate-backgrounds``). The reference corpus (``photos/corpus/``: with the core
photos, what ``--auto`` retrieves from on a fresh machine) adds small copies of photos of
people, places, water, sky, plants, animals, food and objects from Debian packages that no
training or evaluation set reads (``kphotoalbum``'s demo album, ``tuxpaint-data``'s
templates, ``plasma-workspace-wallpapers``, ``gnome-control-center-data``'s user pictures,
``kalzium-data``'s lab-tool photos, ``scribus-template``, ``opencv-doc``'s module examples).
A package that is not installed is fetched with ``apt-get download`` and unpacked (not
installed) under ``--debs``. The records of every photo are in ``tools.asset_sources``; for
each source the script:

1. opens it, applies any EXIF orientation and converts embedded non-sRGB ICC profiles to sRGB;
2. downscales it with Lanczos so that the long side is at most ``MAX_SIDE`` pixels;
3. saves it as a baseline JPEG (quality ``JPEG_QUALITY``, RGB, no EXIF, no ICC profile);
4. keeps it only if the saved photo is colorful (mean CIELAB chroma above ``MIN_CHROMA``);
5. (corpus) keeps it only if it is no near-duplicate (``benchmarks.near_duplicates``) of an
   image an evaluation reads, a core photo, a training candidate or a corpus photo kept before.

It then writes the gray demo target (the CIELAB lightness of ``leuven_a`` as an 8-bit PNG),
removes stale files from earlier runs and writes ``manifest.json``. Sources that are missing,
excluded after a visual review, grayscale or nearly colorless are skipped and reported.
The output is deterministic for a given set of installed packages.

Usage::

    python -m tools.make_assets [--assets-dir platform/assets] [--debs /tmp/chromaref-debs]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageOps
from skimage.color import lab2rgb, rgb2lab

from tools.asset_sources import (
    CORPUS_SOURCES,
    DEFAULT_DEBS_DIR,
    SOURCES,
    Debian,
    Source,
)

MAX_SIDE = 512
JPEG_QUALITY = 92
MIN_CHROMA = 5.0
MAX_TOTAL_BYTES = 6 * 1024 * 1024  # core photos + corpus, all files under photos/
MANIFEST_VERSION = 1

CORPUS_DIR = "corpus"  # under photos/
CORPUS_MAX_SIDE = 320
CORPUS_JPEG_QUALITY = 85

DEMO_TARGET_FILE = "demo_gray_target.png"
DEMO_TARGET_SOURCE = "leuven_a"
DEMO_REFERENCE = "leuven_b"

DEFAULT_ASSETS_DIR = Path(__file__).resolve().parents[1] / "platform" / "assets"

GRAYSCALE_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
CATEGORIES = frozenset(
    {
        "animal",
        "person",
        "food",
        "object",
        "scene",
        "nature",
        "building",
        "painting",
        "interior",
        "water",
        "sky",
    }
)


def mean_chroma(rgb: np.ndarray) -> float:
    """Mean CIELAB chroma ``sqrt(a² + b²)`` of an (H, W, 3) uint8 sRGB image."""
    lab = rgb2lab(rgb)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def gray_from_lightness(rgb: np.ndarray) -> Image.Image:
    """The gray sRGB image with the same CIELAB lightness as ``rgb``, as 8-bit mode "L"."""
    lab = rgb2lab(rgb)
    lab[..., 1:] = 0.0
    gray = lab2rgb(lab)[..., 0]
    return Image.fromarray(np.clip(np.rint(gray * 255.0), 0, 255).astype(np.uint8), mode="L")


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert an image with an embedded non-sRGB ICC profile to sRGB; drop the profile."""
    icc = image.info.get("icc_profile")
    if icc:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if not ImageCms.getProfileDescription(profile).strip().startswith("sRGB"):
            image = ImageCms.profileToProfile(
                image.convert("RGB"),
                profile,
                ImageCms.createProfile("sRGB"),
                renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
                outputMode="RGB",
            )
    image = image.convert("RGB")
    image.info.pop("icc_profile", None)
    return image


def downscale(image: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    """Lanczos-downscale so the long side is at most ``max_side``; smaller images are kept."""
    scale = max_side / max(image.size)
    if scale >= 1.0:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def save_jpeg(image: Image.Image, path: Path, quality: int = JPEG_QUALITY) -> None:
    """Save as baseline RGB JPEG at ``quality`` with no EXIF or ICC metadata."""
    image.save(
        path,
        format="JPEG",
        quality=quality,
        subsampling="4:2:0",
        optimize=True,
        progressive=False,
    )


@dataclass(frozen=True)
class Built:
    """A photo written to the photos folder, with its manifest entry."""

    name: str
    entry: dict[str, Any]


@dataclass(frozen=True)
class Target:
    """Where and how a set of photos is written: its folder under ``photos/``, the long side,
    the JPEG quality and an optional screen (RGB -> reason to drop it, or None)."""

    folder: str = ""
    max_side: int = MAX_SIDE
    quality: int = JPEG_QUALITY
    screen: Callable[[str, np.ndarray], str | None] | None = None


CORE = Target()


def build_photo(
    source: Source, photos_dir: Path, target: Target = CORE
) -> tuple[Built | None, str | None]:
    """Write one source photo; return ``(built, None)`` or ``(None, reason it was dropped)``."""
    if source.category not in CATEGORIES:
        raise ValueError(f"{source.file}: unknown category {source.category!r}")
    if source.exclude:
        return None, f"excluded after review: {source.exclude}"
    path = source.origin.locate() / source.file
    if not path.is_file():
        return None, f"source file not found: {path}"
    with Image.open(path) as opened:
        if opened.mode in GRAYSCALE_MODES:
            return None, f"grayscale source (mode {opened.mode})"
        image = _to_srgb(ImageOps.exif_transpose(opened))
    if source.rotate:
        image = image.rotate(-source.rotate, expand=True)
    rgb = np.asarray(image)
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
        return None, "grayscale source (R = G = B everywhere)"

    relative = f"{target.folder}/{source.name}.jpg" if target.folder else f"{source.name}.jpg"
    out = photos_dir / relative
    out.parent.mkdir(parents=True, exist_ok=True)
    save_jpeg(downscale(image, target.max_side), out, target.quality)
    with Image.open(out) as saved:
        width, height = saved.size
        saved_rgb = np.asarray(saved.convert("RGB"))
    chroma = mean_chroma(saved_rgb)
    reason = None
    if chroma <= MIN_CHROMA:
        reason = f"nearly colorless (mean Lab chroma {chroma:.2f} <= {MIN_CHROMA})"
    elif target.screen is not None:
        reason = target.screen(relative, saved_rgb)
    if reason:
        out.unlink()
        return None, reason

    where = source.origin.where
    entry = {
        "name": source.name,
        "file": relative,
        "source_package": source.origin.package,
        "source_file": f"{where}/{source.file}" if where else source.file,
        "license": source.license,
        "credit": source.credit,
        "width": width,
        "height": height,
        "scene": source.scene or source.name,
        "category": source.category,
    }
    return Built(source.name, entry), None


class NearDuplicateScreen:
    """Drops a corpus photo that is a near-duplicate of an image an evaluation reads (or a core
    photo), of a training candidate, or of a corpus photo kept before it."""

    def __init__(self) -> None:
        from benchmarks.near_duplicates import Fingerprints, evaluation_fingerprints

        # the core photos just written and the evaluation images; not the corpus being rebuilt
        self.references = evaluation_fingerprints(bundled_corpus=False)
        self.training = Fingerprints()
        for name, rgb in _training_candidates():
            self.training.add(name, _fingerprint(rgb))
        self.kept = Fingerprints()

    def __call__(self, relative: str, rgb: np.ndarray) -> str | None:
        print_ = _fingerprint(rgb)
        for what, known in (
            ("evaluation or core photo", self.references),
            ("training candidate", self.training),
            ("corpus photo", self.kept),
        ):
            match = known.best(print_)
            if match.duplicate:
                return (
                    f"near-duplicate of {what} {match.name} (correlation "
                    f"{match.correlation:.3f}, ab diff {match.ab_diff:.2f})"
                )
        self.kept.add(relative, print_)
        return None

    def summary(self) -> dict[str, Any]:
        from benchmarks.near_duplicates import MAX_AB_DIFF, THRESHOLD

        return {
            "rule": f"gray correlation >= {THRESHOLD}, mean |ab| diff <= {MAX_AB_DIFF}, "
            "as is or mirrored (benchmarks.near_duplicates)",
            "evaluation_and_core_images": len(self.references),
            "training_candidates": len(self.training),
        }


def _fingerprint(rgb: np.ndarray) -> np.ndarray:
    from benchmarks.near_duplicates import fingerprint

    return fingerprint(rgb)


def _training_candidates() -> Iterator[tuple[str, np.ndarray]]:
    """``(name, RGB)`` of every training candidate (benchmarks.training_sources), prepared as
    the training set prepares it; a source whose package is missing is reported and skipped."""
    from benchmarks.datasets import MissingSourceError
    from benchmarks.training_set import prepare
    from benchmarks.training_sources import READERS

    for source, reader in READERS.items():
        try:
            for candidate in reader():
                try:
                    with candidate.load() as opened:
                        image, _ = prepare(opened)
                except OSError as error:
                    print(f"  training candidate {candidate.original} unreadable: {error}")
                    continue
                yield candidate.original, np.asarray(downscale(image, 1024))
        except MissingSourceError as error:
            print(f"  training source {source} not checked: {error}")


def _build_set(
    sources: Sequence[Source], photos_dir: Path, target: Target, dropped: list[tuple[str, str]]
) -> list[Built]:
    built: list[Built] = []
    for source in sources:
        result, reason = build_photo(source, photos_dir, target)
        if result is None:
            dropped.append((f"{source.origin.package}: {source.file}", str(reason)))
        else:
            built.append(result)
            print(
                f"  wrote {result.entry['file']:36s} {result.entry['width']}x"
                f"{result.entry['height']}"
            )
    return built


def _remove_stale(folder: Path, keep: set[Path]) -> None:
    for stale in sorted(folder.iterdir()):
        if stale.is_file() and stale.suffix in {".jpg", ".png"} and stale not in keep:
            print(f"  removed stale {stale.name}")
            stale.unlink()


def build(assets_dir: Path) -> int:
    """Rebuild photos, corpus, demo target and manifest under ``assets_dir``; return an exit
    code."""
    photos_dir = assets_dir / "photos"
    photos_dir.mkdir(parents=True, exist_ok=True)

    dropped: list[tuple[str, str]] = []
    built = _build_set(SOURCES, photos_dir, CORE, dropped)
    names = {b.name for b in built}
    if DEMO_TARGET_SOURCE not in names or DEMO_REFERENCE not in names:
        print(f"error: demo needs {DEMO_TARGET_SOURCE} and {DEMO_REFERENCE}", file=sys.stderr)
        return 1
    with Image.open(photos_dir / f"{DEMO_TARGET_SOURCE}.jpg") as color:
        gray = gray_from_lightness(np.asarray(color.convert("RGB")))
    gray.save(photos_dir / DEMO_TARGET_FILE, format="PNG", optimize=True)
    keep = {photos_dir / b.entry["file"] for b in built} | {photos_dir / DEMO_TARGET_FILE}
    _remove_stale(photos_dir, keep)

    print("checking the corpus against evaluation, core and training images ...")
    screen = NearDuplicateScreen()
    corpus_target = Target(CORPUS_DIR, CORPUS_MAX_SIDE, CORPUS_JPEG_QUALITY, screen)
    corpus = _build_set(CORPUS_SOURCES, photos_dir, corpus_target, dropped)
    _remove_stale(photos_dir / CORPUS_DIR, {photos_dir / b.entry["file"] for b in corpus})

    manifest = {
        "version": MANIFEST_VERSION,
        "photos": [b.entry for b in built],
        "corpus": [b.entry for b in corpus],
        "corpus_near_duplicate_check": screen.summary(),
        "demo": {
            "target": DEMO_TARGET_FILE,
            "target_source": DEMO_TARGET_SOURCE,
            "reference": f"{DEMO_REFERENCE}.jpg",
        },
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    (assets_dir / "manifest.json").write_text(text, encoding="utf-8")

    total = sum(p.stat().st_size for p in photos_dir.rglob("*") if p.is_file())
    print(
        f"{len(built)} photos + demo target, {len(corpus)} corpus photos, "
        f"{total / 1e6:.2f} MB in {photos_dir}"
    )
    for what, why in dropped:
        print(f"  dropped {what}: {why}")
    if total > MAX_TOTAL_BYTES:
        print(f"error: photos total {total} bytes > {MAX_TOTAL_BYTES}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--assets-dir",
        type=Path,
        default=DEFAULT_ASSETS_DIR,
        help="folder that receives photos/ and manifest.json (default: %(default)s)",
    )
    parser.add_argument(
        "--debs",
        type=Path,
        default=DEFAULT_DEBS_DIR,
        help="where packages that are not installed are downloaded and unpacked "
        "(default: %(default)s)",
    )
    args = parser.parse_args(argv)
    Debian.debs = args.debs
    return build(args.assets_dir)


if __name__ == "__main__":
    raise SystemExit(main())
