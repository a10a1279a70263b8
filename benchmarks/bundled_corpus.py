"""`--auto`'s default references: the core photos alone vs with the reference corpus.

    python -m benchmarks.bundled_corpus            # 16 labelled photos, writes results/
    python -m benchmarks.bundled_corpus --limit 4  # quick

What a fresh install's `--auto` draws from is the bundled index. This builds it both ways (the
core photos only, as before the corpus; the core photos plus `photos/corpus/`, as now) and
runs `chromaref eval`'s protocol on the labelled photos (`benchmarks.datasets.labelled`, which
neither set contains) with each as the retrieval index: the `retrieved` rows are what `--auto`
would give; gray, training-free and trained (the default) are scored on the same images, so
only the index differs.
It also asks each index for the references of a gray group portrait that neither holds
(KPhotoAlbum's `new_wave_2.jpg`, held out of the corpus for this): the top hits' categories
show whether people are found for people.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks import datasets
from benchmarks._common import table, write_json
from chromaref.evaluation.report import summarise
from chromaref.evaluation.run import evaluate, index_retriever
from chromaref.platform.assets import corpus_photos, photos
from chromaref.retrieval.build import BuildConfig, build_index
from chromaref.retrieval.index import Index
from tools.asset_sources import KPA

PORTRAIT = "new_wave_2.jpg"  # held out of the corpus (tools/asset_sources.py)
PORTRAIT_HITS = 3

METHODS = ("gray", "training-free", "trained")
HEADERS = ["references", "photos", "method", "n", "PSNR dB", "colorfulness", "gap to truth"]


def _corpus(folder: Path, *, with_corpus: bool) -> Path:
    folder.mkdir(parents=True)
    chosen = photos() + (corpus_photos() if with_corpus else [])
    for photo in chosen:
        shutil.copy(photo.path, folder / photo.path.name)
    return folder


def _portrait_hits(index: Index) -> list[dict[str, str]]:
    """The top hits for the gray held-out group portrait, with their bundled category."""
    categories = {p.path.name: p.category for p in photos() + corpus_photos()}
    with Image.open(KPA.locate() / PORTRAIT) as opened:
        gray = np.asarray(opened.convert("L").convert("RGB"))
    hits = index.search(gray, PORTRAIT_HITS)
    names = [Path(hit.uri).name for hit in hits]
    return [{"photo": name, "category": categories[name]} for name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=16, help="labelled photos evaluated")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = {}
    with tempfile.TemporaryDirectory(prefix="chromaref-bundled-") as tmp:
        work = Path(tmp)
        datasets.labelled(work / "labelled")
        for name, with_corpus in (("core", False), ("core+corpus", True)):
            corpus = _corpus(work / name / "photos", with_corpus=with_corpus)
            build_index(corpus, work / name / "index", config=BuildConfig(runner="local"))
            index = Index.open(work / name / "index")
            result = evaluate(
                work / "labelled",
                methods=METHODS,
                retrieve=index_retriever(index),
                limit=args.limit,
            )
            rows = [r for r in summarise(result) if r["reference"] == "retrieved"]
            runs[name] = {
                "photos": len(index),
                "retrieved": rows,
                "skipped": result.skipped,
                "portrait_hits": _portrait_hits(index),
            }
    print(
        table(
            HEADERS,
            [
                [name, run["photos"], r["method"], r["n"], r["psnr"], r["colorfulness"],
                 r["colorfulness_gap"]]
                for name, run in runs.items()
                for r in run["retrieved"]
            ],
        )
    )  # fmt: skip
    print(f"\ntop {PORTRAIT_HITS} references for the gray group portrait ({PORTRAIT}):")
    for name, run in runs.items():
        hits = ", ".join(f"{h['photo']} ({h['category']})" for h in run["portrait_hits"])
        print(f"  {name}: {hits}")
    path = write_json("bundled_corpus", {"limit": args.limit, "runs": runs})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
