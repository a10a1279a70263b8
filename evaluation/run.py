"""`chromaref eval`: colorize a folder of color photos every way and measure against the truth.

    chromaref eval --images photos/ --out report/                     # all methods, HTML report
    chromaref eval --images photos/ --out report/ --index idx/ --methods reinhard,training-free

Each photo is turned gray and colorized by each method from up to four references: `given`
(another view of the same photo: an off-centre crop, mirrored and brighter, standing in for a
reference a user would pick), `retrieved` (the best hit of an index that is not the photo
itself), `same-category` (a random other photo of its category folder, the ImageNet layout
`CATEGORY/photo`; only when every photo has one) and `unrelated` (a random other photo of the
folder, of another category when there are categories). `--limit N` evaluates N photos spread
evenly over the sorted folder; references are drawn from all of them. Metrics: RGB and ab
PSNR, RGB and ab SSIM, colorfulness and its gap to the truth, ImageNet top-1/top-5 agreement
of EfficientNet-Lite0 with its prediction on the true colors, and the ab-histogram distance to
the reference.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageEnhance

from chromaref.platform.color import gray_image, image_to_tensor, lab_image, mean_chroma
from chromaref.platform.config import MIN_REFERENCE_CHROMA, PipelineConfig, TrainedConfig
from chromaref.platform.errors import ChromarefError, ConfigError, UnusableReferenceError
from chromaref.platform.images import IMAGE_SUFFIXES, load_image
from chromaref.platform.metrics import (
    ab_histogram_distance,
    ab_psnr,
    ab_ssim,
    colorfulness,
    psnr,
    ssim,
)
from chromaref.platform.models import get_backbone
from chromaref.platform.pipeline import ColorizationPipeline
from chromaref.retrieval.corpus import item_id

if TYPE_CHECKING:  # at runtime an index arrives built: importing it here would load FAISS
    from chromaref.retrieval.index import Index

REFERENCE_KINDS = ("given", "retrieved", "same-category", "unrelated")
METHODS = ("gray", "reinhard", "welsh", "training-free", "trained")  # accepted; the default
# The semantic probe: an ImageNet classifier, fixed so that agreement scores stay comparable
# whatever backbone matching uses (and only this backbone has a classifier head).
CLASSIFIER = "efficientnet_lite0"
Progress = Callable[[int, int], None]


@dataclass
class EvalResult:
    """Per-(photo, reference kind, method) metric rows, the grids, and skipped photos."""

    rows: list[dict[str, object]] = field(default_factory=list)
    grids: dict[str, list[list[np.ndarray]]] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # the reference kind of each grid row
    diversity: list[dict[str, object]] = field(default_factory=list)


def other_view(rgb: np.ndarray) -> np.ndarray:
    """Another view of the same photo: 80% crop off-centre, mirrored, 15% brighter."""
    image = Image.fromarray(rgb)
    w, h = image.size
    crop = image.crop((int(0.2 * w), int(0.05 * h), w, int(0.85 * h)))
    crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(ImageEnhance.Brightness(crop).enhance(1.15))


class _Classifier:
    """EfficientNet-Lite0's ImageNet prediction, the semantic-interpretability probe."""

    def __init__(self) -> None:
        self.model = get_backbone(CLASSIFIER)

    @torch.inference_mode()
    def top5(self, rgb: np.ndarray) -> list[int]:
        return self.model.classify(image_to_tensor(rgb)).topk(5).indices[0].tolist()


def index_retriever(index: Index) -> Callable[[np.ndarray, Path], np.ndarray]:
    """`retrieve(gray, path)` for `evaluate`: the best hit of `index` that is not the photo
    itself, recognised by path and by content (a copy of it elsewhere in the corpus)."""
    ids_by_content: dict[str, set[str]] = defaultdict(set)
    for row_id, sha1 in zip(index.rows["id"], index.rows["sha1"], strict=True):
        ids_by_content[sha1].add(row_id)

    def retrieve(gray: np.ndarray, path: Path) -> np.ndarray:
        content = hashlib.sha1(path.read_bytes()).hexdigest()
        own = frozenset({item_id(str(path.resolve())), *ids_by_content.get(content, ())})
        hits = index.search(gray, 1, exclude_ids=own)
        if not hits:
            raise ConfigError(f"the index has no reference for {path.name} besides itself")
        return index.load_reference(hits[0])

    return retrieve


def _photos(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ConfigError(f"--images {folder} is not a folder")
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(found) < 2:
        raise ConfigError(f"{folder}: need at least 2 color photos, found {len(found)}")
    return found


def _spread(paths: list[Path], limit: int | None) -> list[Path]:
    """`limit` photos evenly spread over the sorted list (every category of an ImageNet-style
    tree, not the first few of the first one)."""
    if not limit or limit >= len(paths):
        return paths
    return [paths[i * len(paths) // limit] for i in range(limit)]


def _categories(paths: list[Path], root: Path) -> dict[str, list[Path]] | None:
    """Photos by category (first folder under `root`), or None when some photo has no category
    or a category has a single photo: the `same-category` reference needs one for every photo."""
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in paths:
        parts = path.relative_to(root).parts
        if len(parts) < 2:
            return None
        groups[parts[0]].append(path)
    return groups if all(len(group) > 1 for group in groups.values()) else None


def _pick_other(rng: random.Random, pool: list[Path], path: Path) -> Path:
    """A random photo of `pool` other than `path` (pool holds at least one)."""
    while (choice := rng.choice(pool)) == path:
        pass
    return choice


def evaluate(
    images: Path,
    *,
    methods: tuple[str, ...] = METHODS,
    retrieve: Callable[[np.ndarray, Path], np.ndarray] | None = None,
    limit: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    trained: TrainedConfig | None = None,
) -> EvalResult:
    """Evaluate every method on every photo of `images`.

    `retrieve(gray, path)` returns the retrieved reference for a photo (excluding itself);
    without it the `retrieved` column is left out.
    """
    check_request(methods, limit)
    paths = _photos(images)  # references are drawn from all of them
    chosen = _spread(paths, limit)
    pipelines = method_pipelines(methods, trained)
    classifier = _Classifier()
    rng = random.Random(seed)
    result = EvalResult()
    categories = _categories(paths, images)
    available = {"retrieved": retrieve is not None, "same-category": categories is not None}
    kinds = [k for k in REFERENCE_KINDS if available.get(k, True)]
    result.kinds = kinds
    for done, path in enumerate(chosen, start=1):
        try:
            truth = load_image(path).rgb
            if mean_chroma(truth) < MIN_REFERENCE_CHROMA:
                raise UnusableReferenceError("already gray: it has no colors to recover")
            gray = gray_image(truth)
            references = {"given": other_view(truth)}
            if retrieve is not None:
                references["retrieved"] = retrieve(gray, path)
            strangers = paths
            if categories is not None:  # unrelated: another category's photo
                category = path.relative_to(images).parts[0]
                references["same-category"] = _color_photo(rng, categories[category], path)
                others = [c for c in categories if c != category]
                strangers = categories[rng.choice(others)] if others else paths
            references["unrelated"] = _color_photo(rng, strangers, path)
            photo = _evaluate_photo(
                path, truth, gray, references, kinds, methods, pipelines, classifier
            )
        except ChromarefError as exc:
            result.skipped.append((str(path), str(exc)))
        else:  # a photo counts whole or not at all
            result.rows += photo.rows
            result.grids[_grid_name(path, images, result.grids)] = photo.grid
            result.diversity += photo.diversity
        if progress:
            progress(done, len(chosen))
    if not result.rows:
        reasons = "; ".join(f"{Path(p).name}: {why}" for p, why in result.skipped[:3])
        raise ConfigError(f"no photo of {images} could be evaluated ({reasons})")
    return result


def check_request(methods: tuple[str, ...], limit: int | None) -> None:
    """Refuse an empty or unknown method list and a `limit` below 1 before any work starts.

    Raises:
        ConfigError: with the option's name and what it accepts.
    """
    known = ", ".join(METHODS)
    if not methods:
        raise ConfigError(f"--methods names no method; available: {known}")
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ConfigError(f"unknown method(s) {sorted(unknown)}; available: {known}")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit}")


def method_pipelines(
    methods: tuple[str, ...], trained: TrainedConfig | None = None
) -> dict[str, ColorizationPipeline]:
    """A pipeline for each method but `gray` (the gray input is its own result)."""
    return {
        m: ColorizationPipeline(PipelineConfig(colorizer=m, trained=trained or TrainedConfig()))
        for m in methods
        if m != "gray"
    }


def colorize_each(
    gray: np.ndarray,
    references: list[np.ndarray],
    methods: tuple[str, ...],
    pipelines: Mapping[str, ColorizationPipeline],
) -> dict[str, list[np.ndarray]]:
    """Each method's result from each reference, in order; one pipeline call per method, so
    the target is prepared once for all of its references."""
    return {
        method: [gray] * len(references)
        if method == "gray"
        else [out.rgb for out in pipelines[method](gray, references)]
        for method in methods
    }


def rgb_scores(out: np.ndarray, truth: np.ndarray, truth_colorfulness: float) -> dict[str, float]:
    """RGB PSNR and SSIM against the truth, colorfulness and its gap to the truth's: the scores
    `evaluate` and the benchmark's quality table share."""
    out_colorfulness = colorfulness(out)
    return {
        "psnr": psnr(out, truth),
        "ssim": ssim(out, truth),
        "colorfulness": out_colorfulness,
        "colorfulness_gap": abs(out_colorfulness - truth_colorfulness),
    }


def _grid_name(path: Path, images: Path, taken: Mapping[str, object]) -> str:
    """The name of a photo's grid file: its stem, or, when another photo of the run has that
    stem (`x.png` beside `x.jpg`, `cat/x.jpg` and `dog/x.jpg`), its path under `images`, so
    that no grid replaces another."""
    used = {name.casefold() for name in taken}
    if path.stem.casefold() not in used:
        return path.stem
    name = candidate = path.relative_to(images).as_posix().replace("/", "-")
    number = 1
    while candidate.casefold() in used:
        number += 1
        candidate = f"{name}-{number}"
    return candidate


def _color_photo(rng: random.Random, pool: list[Path], path: Path, tries: int = 20) -> np.ndarray:
    """A random photo of `pool`, other than `path`, with colors to transfer.

    Raises:
        UnusableReferenceError: `tries` draws found only gray or unreadable photos.
    """
    for _ in range(tries):
        choice = _pick_other(rng, pool, path)
        try:
            rgb = load_image(choice).rgb
        except ChromarefError:
            continue
        if mean_chroma(rgb) >= MIN_REFERENCE_CHROMA:
            return rgb
    raise UnusableReferenceError(f"no color photo to use as a reference for {path.name}")


@dataclass
class _PhotoResult:
    rows: list[dict[str, object]]
    grid: list[list[np.ndarray]]
    diversity: list[dict[str, object]]


def _evaluate_photo(
    path: Path,
    truth: np.ndarray,
    gray: np.ndarray,
    references: dict[str, np.ndarray],
    kinds: list[str],
    methods: tuple[str, ...],
    pipelines: dict[str, ColorizationPipeline],
    classifier: _Classifier,
) -> _PhotoResult:
    truth_lab = lab_image(truth)
    truth_top5 = classifier.top5(truth)
    truth_colorfulness = colorfulness(truth)
    outputs = colorize_each(gray, [references[k] for k in kinds], methods, pipelines)
    done = _PhotoResult(rows=[], grid=[], diversity=[])
    results_ab: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    for i, kind in enumerate(kinds):
        reference = references[kind]
        reference_lab = lab_image(reference)
        row_images = [gray, reference]
        for method in methods:
            out = outputs[method][i]
            out_lab = lab_image(out)
            top5 = classifier.top5(out)
            done.rows.append(
                {
                    "image": path.name,
                    "reference": kind,
                    "method": method,
                    **rgb_scores(out, truth, truth_colorfulness),
                    "psnr_ab": ab_psnr(out_lab, truth_lab),
                    "ssim_ab": ab_ssim(out_lab, truth_lab),
                    "top1_agree": float(top5[0] == truth_top5[0]),
                    "top5_agree": float(truth_top5[0] in top5),
                    "reference_hist_distance": ab_histogram_distance(out_lab, reference_lab),
                }
            )
            row_images.append(out)
            results_ab[method].append(out_lab[..., 1:])
        done.grid.append([*row_images, truth])
    for method, abs_ in results_ab.items():
        done.diversity.append(
            {"image": path.name, "method": method, "diversity": result_diversity(abs_)}
        )
    return done


def result_diversity(abs_: list[np.ndarray]) -> float:
    """Mean per-pixel ab distance between the results of different references (paper: several
    references give several different results); 0 when every reference gives the same."""
    pairs = [
        float(np.linalg.norm(a - b, axis=-1).mean())
        for i, a in enumerate(abs_)
        for b in abs_[i + 1 :]
    ]
    return float(np.mean(pairs)) if pairs else 0.0
