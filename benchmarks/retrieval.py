"""Retrieval quality (with the paper's ablation) and Ray Data descriptor throughput.

    python -m benchmarks.retrieval            # views, labelled, throughput: results/retrieval_*
    python -m benchmarks.retrieval --quick    # fewer throughput images
    python -m benchmarks.retrieval --only labelled --labelled DIR   # a CLASS/* folder of yours

Quality without ImageNet: every bundled photo gets 3 augmented views (crop, mirror,
brightness/contrast, small rotation) in the corpus; the query is the GRAY version of a 4th,
held-back view. recall@k = a view of the same photo is among the top k. precision@5 = share of
the top 5 (other photos only) with the query's category. Labelled: on real photos in category
folders (by default the gcompris set of `benchmarks.datasets labelled`, when the Debian package
is installed), each photo turned gray queries the index without itself; precision@k = share of
the top k with its category, also with the paper's class filter (candidates whose predicted
top-1 ImageNet class is the query's come first). Throughput: the Ray Data build
(decode tasks + descriptor actor pool + shard writes) against a bare single-process loop
(decode + descriptors, nothing written) over the same files, both with 2 torch threads total.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance

from benchmarks import datasets
from benchmarks._common import table, write_json
from chromaref.platform.assets import photos
from chromaref.platform.color import gray_image, image_to_tensor
from chromaref.platform.images import load_image
from chromaref.retrieval.build import BuildConfig, build_index
from chromaref.retrieval.descriptors import DescriptorExtractor, luminance_thumbnail
from chromaref.retrieval.index import Index
from chromaref.retrieval.ranking import RankingConfig

ABLATION = {
    "semantic only": ("semantic",),
    "luminance only": ("luminance",),
    "semantic + luminance": ("semantic", "luminance"),
    "semantic + luminance + local (default)": ("semantic", "luminance", "local"),
}
DEFAULT_RANKING = "semantic + luminance + local (default)"
CLASS_FILTER = "default + top-1 class filter (paper)"


def augment(image: Image.Image, rng: random.Random) -> Image.Image:
    """A random view: crop 70-95%, maybe mirrored, brightness/contrast +-20%, rotation +-8 deg."""
    w, h = image.size
    scale = rng.uniform(0.7, 0.95)
    cw, ch = int(w * scale), int(h * scale)
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    view = image.crop((x, y, x + cw, y + ch)).rotate(rng.uniform(-8, 8), expand=False)
    if rng.random() < 0.5:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    view = ImageEnhance.Brightness(view).enhance(rng.uniform(0.8, 1.2))
    return ImageEnhance.Contrast(view).enhance(rng.uniform(0.8, 1.2))


Queries = dict[str, tuple[str, Image.Image]]


def make_view_corpus(root: Path, views: int = 3, seed: int = 0) -> Queries:
    """Corpus CATEGORY/photo__vN.jpg; returns name -> (category, held-back query view)."""
    rng = random.Random(seed)
    queries = {}
    for p in photos():
        image = Image.open(p.path).convert("RGB")
        (root / p.category).mkdir(parents=True, exist_ok=True)
        for v in range(views):
            augment(image, rng).save(root / p.category / f"{p.name}__v{v}.jpg", quality=92)
        queries[p.name] = (p.category, augment(image, rng).convert("L").convert("RGB"))
    return queries


def quality(index_dir: Path, queries: Queries) -> dict:
    index = Index.open(index_dir)
    ids, uris = index.rows["id"], index.rows["uri"]
    photo_of = {i: Path(u).stem.split("__")[0] for i, u in zip(ids, uris, strict=True)}
    category_of = dict(zip(ids, index.rows["label"], strict=True))
    results = {}
    for name, stages in ABLATION.items():
        ranking = RankingConfig(stages=stages)
        r1 = r5 = p5 = 0.0
        for photo, (category, view) in queries.items():
            hits = index.search(np.asarray(view), 5, ranking=ranking)
            same = [photo_of[h.id] == photo for h in hits]
            r1 += same[0]
            r5 += any(same)
            own = frozenset(i for i, p in photo_of.items() if p == photo)
            others = index.search(np.asarray(view), 5, ranking=ranking, exclude_ids=own)
            p5 += np.mean([category_of[h.id] == category for h in others])
        n = len(queries)
        results[name] = {"recall@1": r1 / n, "recall@5": r5 / n, "precision@5": p5 / n}
    return results


def _top1_classes(backbone, images: list[np.ndarray]) -> list[int]:
    """Top-1 ImageNet class of each (H, W, 3) uint8 image."""
    with torch.inference_mode():
        return [int(backbone.classify(image_to_tensor(image)).argmax()) for image in images]


def labelled_precision(index_dir: Path) -> dict:
    index = Index.open(index_dir)
    ids, labels = index.rows["id"], index.rows["label"]
    grays = [gray_image(load_image(u).rgb) for u in index.rows["uri"]]
    classes = dict(zip(ids, _top1_classes(index.extractor.backbone, grays), strict=True))
    rows = {name: np.zeros((len(ids), 2)) for name in [*ABLATION, CLASS_FILTER]}
    for n, (own, label, gray) in enumerate(zip(ids, labels, grays, strict=True)):
        for name, stages in ABLATION.items():
            ranking = RankingConfig(stages=stages, shortlist=50)
            hits = index.search(gray, 50, ranking=ranking, exclude_ids=frozenset([own]))
            same = [h.label == label for h in hits]
            rows[name][n] = same[0], np.mean(same[:5])
            if name == DEFAULT_RANKING:
                in_class = [h for h in hits if classes[h.id] == classes[own]]
                hits = in_class + [h for h in hits if classes[h.id] != classes[own]]
                same = [h.label == label for h in hits]
                rows[CLASS_FILTER][n] = same[0], np.mean(same[:5])
    return {
        "images": len(ids),
        "categories": sorted(set(labels)),
        "ablation": {
            name: {"precision@1": float(v[:, 0].mean()), "precision@5": float(v[:, 1].mean())}
            for name, v in rows.items()
        },
    }


def bare_loop(files: list[Path], batch_size: int) -> float:
    """Images/s of decode + descriptors in one process, no Ray, no writing."""
    extractor = DescriptorExtractor()
    start = time.perf_counter()
    for i in range(0, len(files), batch_size):
        thumbs = [luminance_thumbnail(load_image(f).rgb, 224) for f in files[i : i + batch_size]]
        extractor(np.stack(thumbs))
    return len(files) / (time.perf_counter() - start)


def ray_build(corpus: Path, out: Path, batch_size: int) -> float:
    """Images/s of a whole Ray build (actor start-up, shards, FAISS, manifest included);
    only starting Ray itself (~4 s, once per process) is left out."""
    from chromaref.retrieval.runtime import ensure_ray

    ensure_ray(num_cpus=2)
    start = time.perf_counter()
    report = build_index(corpus, out, config=BuildConfig(batch_size=batch_size, shard_size=100))
    images = report.count + len(report.skipped)
    return images / (time.perf_counter() - start)


def throughput(tmp: Path, corpus: Path, copies: int) -> dict:
    originals = sorted(corpus.rglob("*.jpg"))
    flat = tmp / "throughput"
    flat.mkdir()
    for copy in range(copies):  # slightly brighter each copy: distinct bytes, no duplicates
        for n, f in enumerate(originals):
            image = ImageEnhance.Brightness(Image.open(f)).enhance(1.0 + 0.02 * copy)
            image.save(flat / f"{copy:02d}_{n:05d}.jpg", quality=90)
    files = sorted(flat.glob("*.jpg"))
    bare = bare_loop(files, 32)
    ray_rate = ray_build(flat, tmp / "ray-index", 32)
    rows = [
        ["bare loop (1 process)", len(files), bare],
        ["Ray Data build", len(files), ray_rate],
        ["ratio Ray / bare", "", ray_rate / bare],
    ]
    print(table(["runner", "images", "images/s"], rows))
    return {
        "images": len(files),
        "bare_loop_images_per_s": bare,
        "ray_images_per_s": ray_rate,
        "ratio": ray_rate / bare,
    }


def views_quality(tmp: Path, corpus: Path, queries: Queries) -> dict:
    build_index(corpus, tmp / "index", config=BuildConfig(runner="local"))
    ablation = quality(tmp / "index", queries)
    rows = [[k, v["recall@1"], v["recall@5"], v["precision@5"]] for k, v in ablation.items()]
    print(table(["ranking", "recall@1", "recall@5", "precision@5 (category)"], rows))
    return ablation


def labelled(tmp: Path, folder: Path | None) -> dict | None:
    if folder is None:
        folder = tmp / "labelled"
        try:
            datasets.labelled(folder)
        except datasets.MissingSourceError as error:
            print(f"labelled: skipped ({error})")
            return None
    build_index(folder, tmp / "labelled-index", config=BuildConfig(runner="local"))
    result = labelled_precision(tmp / "labelled-index")
    rows = [[k, v["precision@1"], v["precision@5"]] for k, v in result["ablation"].items()]
    print(f"\n{result['images']} labelled photos, categories {', '.join(result['categories'])}")
    print(table(["ranking", "precision@1", "precision@5"], rows))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer throughput images")
    parser.add_argument("--only", choices=["quality", "labelled", "throughput"], help="one part")
    parser.add_argument("--labelled", type=Path, help="CLASS/* photo folder (default: gcompris)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        corpus = tmp / "views"
        queries = make_view_corpus(corpus)
        parts = {
            "quality": lambda: {"ablation": views_quality(tmp, corpus, queries)},
            "labelled": lambda: {"labelled": labelled(tmp, args.labelled)},
            "throughput": lambda: {"throughput": throughput(tmp, corpus, 3 if args.quick else 12)},
        }
        for name, measure in parts.items():
            if args.only in (None, name):
                path = write_json(f"retrieval_{name}", measure())
                print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
