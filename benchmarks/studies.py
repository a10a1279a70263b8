"""The paper's studies on offline data: the choice of reference, and non-natural images.

    python -m benchmarks.studies              # 16 images per domain, writes results/studies.json
    python -m benchmarks.studies --limit 4    # quick

Domains: `photos` (the bundled real photos), `labelled` (real photos in 5 category folders),
`paintings` (crops of paintings), `drawings` (colored illustrations) and `animation` (frames of
Megamind.avi); all but the first come from Debian packages (see `benchmarks.datasets`), and a
domain whose package is missing is skipped with the reason. `chromaref eval`'s protocol on
`--limit` images spread over each domain: each image is turned gray and colorized by every
method from a `given` reference (another view of itself), a `retrieved` one (the best hit of an
index of its whole domain, not itself), a `same-category` one (a random photo of its category,
`labelled` only) and an `unrelated` one (another image of the domain).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

from benchmarks import datasets
from benchmarks._common import (
    DOCS_IMAGES,
    add_model_option,
    compared_methods,
    table,
    write_json,
)
from chromaref.evaluation.report import diversity_by_method, summarise, write_report
from chromaref.evaluation.run import evaluate, index_retriever
from chromaref.platform.assets import photos
from chromaref.platform.config import TrainedConfig
from chromaref.retrieval.build import BuildConfig, build_index
from chromaref.retrieval.index import Index


def _bundled_photos(out: Path) -> None:
    out.mkdir(parents=True)
    for p in photos():
        if p.category != "painting":
            shutil.copy(p.path, out / p.path.name)


DOMAINS: dict[str, Callable[[Path], None]] = {
    "photos": _bundled_photos,
    "labelled": datasets.labelled,
    "paintings": datasets.paintings,
    "drawings": datasets.drawings,
    "animation": datasets.animation,
}


def run_domain(
    name: str, work: Path, limit: int, methods: tuple[str, ...], trained: TrainedConfig
) -> dict | None:
    corpus = work / name / "corpus"
    try:
        DOMAINS[name](corpus)
    except datasets.MissingSourceError as error:
        print(f"{name}: skipped ({error})")
        return None
    build_index(corpus, work / name / "index", config=BuildConfig(runner="local"))
    index = Index.open(work / name / "index")
    result = evaluate(
        corpus, methods=methods, retrieve=index_retriever(index), limit=limit, trained=trained
    )
    report = write_report(result, work / name / "report", methods)
    # the docs show the most colorful truth: there is the most to get right (or wrong)
    colorful = max(
        (r for r in result.rows if r["method"] == "gray"), key=lambda r: r["colorfulness_gap"]
    )
    grid = report.parent / "grids" / f"{Path(str(colorful['image'])).stem}.jpg"
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    picture = Image.open(grid)
    picture.thumbnail((1400, 1400))  # small enough for the repository and a web page
    picture.save(DOCS_IMAGES / f"study_{name}.jpg", quality=85)
    summary = summarise(result)
    print(f"\n{name}: {len(result.grids)} images, corpus {len(index)}")
    columns = ["reference", "method", "psnr", "ssim_ab", "colorfulness_gap", "top5_agree"]
    print(table(columns, [[row[c] for c in columns] for row in summary]))
    return {
        "images": len(result.grids),
        "kinds": result.kinds,
        "corpus": len(index),
        "summary": summary,
        "diversity": diversity_by_method(result),
        "skipped": result.skipped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=16, help="images evaluated per domain")
    parser.add_argument("--domains", default=",".join(DOMAINS), help="comma-separated")
    parser.add_argument("--threads", type=int, default=2)
    add_model_option(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    methods, trained = compared_methods(args.model)
    with tempfile.TemporaryDirectory(prefix="chromaref-studies-") as tmp:
        results = {
            name: run_domain(name, Path(tmp), args.limit, methods, trained)
            for name in args.domains.split(",")
        }
    model = {"model": trained.model} if trained.model else {}
    path = write_json("studies", {"limit": args.limit, "domains": results, **model})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
