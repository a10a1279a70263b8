"""The photos the colorization sub-net trains on: real color photos that no evaluation uses.

    python -m benchmarks.datasets training --out /work/data/training
    chromaref train --corpus /work/data/training ...

The candidates (`benchmarks.training_sources`) come only from the packages ASSETS.md names. Each
one is, in order:
1. left out when `tools/make_assets.py` makes a bundled photo of that very file;
2. decoded: EXIF orientation applied, ICC profile converted to sRGB; a transparent stamp is
   cropped to its object (plus a margin) and composited on white, as chromaref's loader
   composites any transparent image;
3. downscaled with Lanczos to at most `MAX_SIDE` px on the long side, and left out when its
   short side is under `MIN_SIDE` px (`CUTOUT_MIN_SIDE` for a cut-out) or it is nearly
   colorless (mean CIELAB chroma, of the object alone for a cut-out, at most
   `make_assets.MIN_CHROMA`, the bundled photos' rule), or when training would find it gray
   (`chromaref.platform.color.mean_chroma` of the whole image under `MIN_REFERENCE_CHROMA`: a
   thin object on white);
4. left out when it is a near-duplicate (`benchmarks.near_duplicates`) of any image an evaluation
   reads or any bundled photo, or of a photo already taken;
5. written as a JPEG to `OUT/SOURCE/NAME.jpg`: a folder tree that `list_corpus` reads.

`OUT/split.json` lists every file with its source, original and split, and every candidate left
out with the reason (and the evaluation image it duplicates). The split is by group (a source
file, or the files of one scene): a group is held out for validation when a hash of its key
falls below `VAL_FRACTION`, so a group stays on its side when sources are added or missing.
`OUT/SOURCES.md` gives each file's package, original and author / license record as the package
states it. A rerun rewrites the same bytes and removes files an earlier run wrote that are no
longer in the set.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from benchmarks.datasets import MissingSourceError
from benchmarks.near_duplicates import (
    MAX_AB_DIFF,
    THRESHOLD,
    Fingerprints,
    evaluation_fingerprints,
    fingerprint,
)
from benchmarks.training_sources import READERS, Candidate, Reader
from chromaref.platform.color import mean_chroma as mean_chroma_probe
from chromaref.platform.config import MIN_REFERENCE_CHROMA, MatchingConfig
from chromaref.platform.files import atomic_path, atomic_write_text, sha256_file
from tools.asset_sources import CORPUS_SOURCES, SOURCES
from tools.make_assets import MIN_CHROMA, _to_srgb, downscale, mean_chroma, save_jpeg

MAX_SIDE = 1024
MIN_SIDE = 128
# A cut-out must fill a training crop (the matching working size) without being enlarged: most
# tuxpaint stamps are 130-250 px, and all of them would make two thirds of the set, so two of
# three training samples would be a blurred object on white.
CUTOUT_MIN_SIDE = MatchingConfig().working_size
VAL_FRACTION = 0.1
SPLIT_KEY = "chromaref-training-v1"
ALPHA_MARGIN = 0.05  # of the object's long side, kept around a cut-out stamp
SPLIT_FILE = "split.json"
SOURCES_FILE = "SOURCES.md"


@dataclass(frozen=True)
class Kept:
    """A candidate written to the set, with what split.json says about the file."""

    candidate: Candidate
    file: str
    width: int
    height: int
    chroma: float


def _bundled_sources() -> set[tuple[str, str]]:
    """(package, file name) of every photo `tools/asset_sources.py` lists, bundled or not."""
    return {(source.origin.package, source.file) for source in (*SOURCES, *CORPUS_SOURCES)}


def prepare(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """(RGB, upright, sRGB image; its object mask or None): a transparent image is cropped to
    its object (plus a margin) and composited on white, and the mask marks the object."""
    image = ImageOps.exif_transpose(image)
    if "A" not in image.getbands() and "transparency" not in image.info:
        return _to_srgb(image), None
    rgba = image.convert("RGBA")
    mask = rgba.getchannel("A").point(lambda a: 255 if a > 8 else 0)
    box = mask.getbbox()
    if box:
        margin = round(ALPHA_MARGIN * max(box[2] - box[0], box[3] - box[1]))
        box = (
            max(0, box[0] - margin),
            max(0, box[1] - margin),
            min(rgba.width, box[2] + margin),
            min(rgba.height, box[3] + margin),
        )
        rgba, mask = rgba.crop(box), mask.crop(box)
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    white.alpha_composite(rgba)
    return _to_srgb(white), mask


def object_chroma(image: Image.Image, mask: Image.Image | None) -> float:
    """Mean CIELAB chroma of the photo, or of its object alone when it is a cut-out (the white
    around it would make any cut-out look colorless)."""
    rgb = np.asarray(image)
    if mask is not None:
        inside = np.asarray(mask.resize(image.size, Image.Resampling.NEAREST)) > 0
        if inside.any():
            rgb = rgb[inside][:, None, :]
    return mean_chroma(rgb)


def _unit_hash(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / 16**12


def split_groups(groups: Iterable[str], fraction: float = VAL_FRACTION) -> dict[str, str]:
    """group -> "train" | "val": by a hash of the group key, so each group keeps its side when
    others come or go; at least one validation group when there are two or more."""
    keys = {group: _unit_hash(f"{SPLIT_KEY}:{group}") for group in sorted(set(groups))}
    sides = {group: "val" if key < fraction else "train" for group, key in keys.items()}
    if len(keys) >= 2 and "val" not in sides.values():
        sides[min(keys, key=keys.__getitem__)] = "val"
    return sides


class _Builder:
    """One extraction run: candidates in, files plus the records of what was left out."""

    def __init__(self, out: Path, references: Fingerprints) -> None:
        self.out = out
        self.references = references
        self.taken = Fingerprints()
        self.bundled = _bundled_sources()
        self.kept: list[Kept] = []
        self.excluded: list[dict[str, Any]] = []

    def _exclude(self, candidate: Candidate, reason: str, **details: Any) -> None:
        self.excluded.append(
            {"original": candidate.original, "package": candidate.package, "reason": reason}
            | details
        )

    def add(self, candidate: Candidate) -> None:
        if (candidate.package, Path(candidate.original).name) in self.bundled:
            self._exclude(candidate, "bundled photo source")
            return
        try:
            with candidate.load() as opened:
                image, mask = prepare(opened)
        except (OSError, MissingSourceError) as error:
            self._exclude(candidate, f"unreadable ({error})")
            return
        image = downscale(image, MAX_SIDE)
        if min(image.size) < (MIN_SIDE if mask is None else CUTOUT_MIN_SIDE):
            kind = "photo" if mask is None else "cut-out"
            self._exclude(candidate, f"too small ({kind}, {image.width}x{image.height})")
            return
        chroma = object_chroma(image, mask)
        if chroma <= MIN_CHROMA:
            self._exclude(candidate, f"nearly colorless (mean chroma {chroma:.2f})")
            return
        if mean_chroma_probe(np.asarray(image)) < MIN_REFERENCE_CHROMA:  # training's own test
            self._exclude(candidate, "nearly colorless (a small object on white)")
            return
        print_ = fingerprint(np.asarray(image))
        for reason, known in (
            ("evaluation near-duplicate", self.references),
            ("duplicate", self.taken),
        ):
            match = known.best(print_)
            if match.duplicate:
                self._exclude(
                    candidate,
                    reason,
                    match=match.name,
                    correlation=round(match.correlation, 4),
                    ab_diff=round(match.ab_diff, 2),
                )
                return
        file = f"{candidate.source}/{candidate.name}.jpg"
        if file in self.taken.names:
            raise ValueError(f"two candidates would both be written to {file}")
        with atomic_path(self.out / file) as tmp:
            save_jpeg(image, tmp)
        self.taken.add(file, print_)
        self.kept.append(Kept(candidate, file, image.width, image.height, round(chroma, 2)))


def _entries(builder: _Builder) -> list[dict[str, Any]]:
    sides = split_groups(k.candidate.group for k in builder.kept)
    return [
        {
            "file": k.file,
            "source": k.candidate.source,
            "package": k.candidate.package,
            "original": k.candidate.original,
            "group": k.candidate.group,
            "split": sides[k.candidate.group],
            "width": k.width,
            "height": k.height,
            "mean_chroma": k.chroma,
            "sha256": sha256_file(builder.out / k.file),
        }
        for k in builder.kept
    ]


def _sources_md(
    builder: _Builder, entries: list[dict[str, Any]], skipped: Mapping[str, str]
) -> str:
    split = {e["file"]: e["split"] for e in entries}
    lines = [
        "# Sources of the training photos",
        "",
        f"{len(entries)} photos. Each section is one source folder; under each author / license "
        "record (quoted as the package states it) come the files it covers: file in this set "
        "<- original (package) [split].",
        "",
    ]
    by_source: dict[str, dict[str, list[Kept]]] = defaultdict(lambda: defaultdict(list))
    for k in builder.kept:
        by_source[k.candidate.source][k.candidate.record].append(k)
    for source, records in by_source.items():
        lines += [f"## {source}", ""]
        for record, kept in records.items():
            lines += ["```", record, "```", ""]
            for k in kept:
                origin = f"`{k.candidate.original}` ({k.candidate.package})"
                lines.append(f"- `{k.file}` <- {origin} [{split[k.file]}]")
            lines.append("")
    if skipped:
        lines += ["## Sources not installed", ""]
        lines += [f"- {name}: {why}" for name, why in skipped.items()]
        lines.append("")
    return "\n".join(lines)


def _remove_stale(out: Path, keep: set[str]) -> None:
    """Delete the files an earlier run listed in split.json that this run did not write."""
    try:
        earlier = json.loads((out / SPLIT_FILE).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    for entry in earlier:
        if entry.get("file") not in keep:
            (out / entry["file"]).unlink(missing_ok=True)


def build(
    out: Path,
    readers: Mapping[str, Reader] = READERS,
    references: Fingerprints | None = None,
) -> dict[str, Any]:
    """Extract the training set into `out`; returns what split.json records.

    `references` defaults to the fingerprints of every evaluation and bundled image.
    """
    started = time.perf_counter()
    builder = _Builder(out, evaluation_fingerprints() if references is None else references)
    skipped: dict[str, str] = {}
    for name, reader in readers.items():
        try:
            for candidate in reader():
                builder.add(candidate)
        except MissingSourceError as error:
            skipped[name] = str(error)
            print(f"{name}: skipped ({error})")
    entries = _entries(builder)
    _remove_stale(out, {e["file"] for e in entries})
    record = {
        "version": 1,
        "split_rule": f"a group is val when int(sha256('{SPLIT_KEY}:' + group)[:12], 16) "
        f"/ 16**12 < {VAL_FRACTION}; at least one val group",
        "near_duplicate_rule": f"gray correlation >= {THRESHOLD}, mean |ab| diff <= {MAX_AB_DIFF}",
        "evaluation_images_checked": len(builder.references),
        "files": entries,
        "excluded": builder.excluded,
        "skipped_sources": skipped,
    }
    atomic_write_text(out / SPLIT_FILE, json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    atomic_write_text(out / SOURCES_FILE, _sources_md(builder, entries, skipped))
    _summary(entries, builder.excluded, time.perf_counter() - started)
    return record


def _summary(entries: list[dict[str, Any]], excluded: list[dict[str, Any]], seconds: float) -> None:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    pixels: Counter[str] = Counter()
    for e in entries:
        counts[e["source"]][e["split"]] += 1
        pixels[e["source"]] += e["width"] * e["height"]
    for source, count in counts.items():
        print(
            f"{source:20s} train {count['train']:4d}  val {count['val']:3d}  "
            f"{pixels[source] / 1e6:7.1f} MP"
        )
    total = Counter(e["split"] for e in entries)
    print(
        f"{'total':20s} train {total['train']:4d}  val {total['val']:3d}  "
        f"{sum(pixels.values()) / 1e6:7.1f} MP"
    )
    reasons = Counter(x["reason"].split(" (")[0] for x in excluded)
    print("left out: " + ", ".join(f"{n} {reason}" for reason, n in reasons.most_common()))
    print(f"extracted in {seconds:.0f} s")
