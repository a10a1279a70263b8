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
top-1 ImageNet class is the query's come first). Throughput, on ImageNet-like JPEGs made from
the bundled photos: the same `build_index` end to end on Ray Data and in-process
(`runner="local"`), against the hardware's bound: the descriptor network alone on ready
thumbnails (2 threads), and decoding alone (1 core).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
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
from chromaref.retrieval.descriptors import (
    DescriptorConfig,
    DescriptorExtractor,
    luminance_thumbnail,
)
from chromaref.retrieval.index import Index
from chromaref.retrieval.mapper import decode_batch
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


def imagenet_like_corpus(root: Path, images: int, seed: int = 0) -> list[Path]:
    """`images` distinct JPEGs shaped like ImageNet's (500x375, ~110 KB): bundled photos under
    a random 4:3 crop (55-100% of the side), maybe mirrored, saved at quality 92-98 with full
    chroma (the crops are upscaled, so smoother than photos: this brings back the bytes)."""
    rng = random.Random(seed)
    sources = [Image.open(p.path).convert("RGB") for p in photos()]
    root.mkdir(parents=True)
    for n in range(images):
        image = sources[n % len(sources)]
        w, h = image.size
        cw = int(min(w, h * 4 / 3) * rng.uniform(0.55, 1.0))
        ch = int(cw * 3 / 4)
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        view = image.crop((x, y, x + cw, y + ch)).resize((500, 375), Image.Resampling.BICUBIC)
        if rng.random() < 0.5:
            view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        view.save(root / f"{n:05d}.jpg", quality=rng.randint(92, 98), subsampling=0)
    return sorted(root.glob("*.jpg"))


def network_rate(thumbnails: np.ndarray, batch_size: int) -> float:
    """Images/s of the descriptor network alone (2 threads): the bound of a 2-core build."""
    extractor = DescriptorExtractor()
    extractor(thumbnails[:batch_size])  # warm-up: first-call allocations
    start = time.perf_counter()
    for i in range(0, len(thumbnails), batch_size):
        extractor(thumbnails[i : i + batch_size])
    return len(thumbnails) / (time.perf_counter() - start)


def decode_rate(files: list[Path], size: int) -> float:
    """Images/s of one core reading, decoding, checking and thumbnailing (a build's CPU stage)."""
    batch = {"uri": np.array([str(f.resolve()) for f in files])}
    start = time.perf_counter()
    decode_batch(batch, size)  # one torch thread, as in a build's decode tasks
    return len(files) / (time.perf_counter() - start)


def build_rate(corpus: Path, out: Path, runner: str, batch_size: int) -> tuple[float, dict]:
    """Images/s of a whole `build_index` (model load, decode, checks, descriptors, shards,
    FAISS, manifest) and its per-stage seconds; starting Ray itself (once) is left out."""
    shutil.rmtree(out, ignore_errors=True)
    config = BuildConfig(runner=runner, batch_size=batch_size, shard_size=100)
    start = time.perf_counter()
    report = build_index(corpus, out, config=config)
    return report.described / (time.perf_counter() - start), report.stage_seconds


def throughput(tmp: Path, images: int, repeats: int) -> dict:
    """All variants measured in turn, `repeats` rounds, each with the load average beside it:
    the machine is shared, so only figures from the same round compare."""
    from chromaref.retrieval.runtime import ensure_ray

    files = imagenet_like_corpus(tmp / "imagenet-like", images)
    size = DescriptorConfig().image_size
    thumbnails = np.stack([luminance_thumbnail(load_image(f).rgb, size) for f in files])
    ensure_ray(num_cpus=2)
    variants = {
        "network": lambda: (network_rate(thumbnails, 32), {}),
        "decode": lambda: (decode_rate(files, size), {}),
        "local": lambda: build_rate(files[0].parent, tmp / "local-index", "local", 32),
        "ray": lambda: build_rate(files[0].parent, tmp / "ray-index", "ray", 32),
    }
    rounds = []
    for _ in range(repeats):
        for name, measure in variants.items():
            rate, stages = measure()
            load = os.getloadavg()[0]
            rounds.append(
                {"variant": name, "images_per_s": rate, "stage_seconds": stages, "loadavg_1m": load}
            )
    best = {
        name: max(r["images_per_s"] for r in rounds if r["variant"] == name) for name in variants
    }
    ratios = {name: best[name] / best["network"] for name in ("local", "ray")}
    rows = [[r["variant"], r["images_per_s"], r["loadavg_1m"]] for r in rounds]
    print(table(["variant", "images/s", "load (1 min)"], rows))
    print(f"best of {repeats}: {best}; ratio to the network alone: {ratios}")
    return {
        "images": len(files),
        "mean_jpeg_kb": float(np.mean([f.stat().st_size for f in files]) / 1e3),
        "precision": DescriptorExtractor().config.precision,
        "best_images_per_s": best,
        "ratio_to_network": ratios,
        "ratio": ratios["ray"],  # the README's headline: the Ray build over the network alone
        "rounds": rounds,
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
    parser.add_argument("--quick", action="store_true", help="fewer throughput images, 1 round")
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
            "throughput": lambda: {
                "throughput": throughput(tmp, 105 if args.quick else 350, 1 if args.quick else 2)
            },
        }
        for name, measure in parts.items():
            if args.only in (None, name):
                path = write_json(f"retrieval_{name}", measure())
                print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
