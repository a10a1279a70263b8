"""Transfer to non-natural images (the paper's paintings and cartoons), next to real photos.

    python -m benchmarks.transfer              # 16 images per domain, writes results/transfer.json
    python -m benchmarks.transfer --limit 4    # quick

Domains: `photos` (the bundled real photos), `paintings` (crops of paintings, Debian
`gcompris-qt-data`) and `animation` (frames of Megamind.avi, Debian `opencv-doc`); a domain whose
package is missing is skipped with the reason. `chromaref eval`'s protocol on `--limit` images
spread over each domain: each image is turned gray and colorized by every method from `given`
(another view of itself), `retrieved` (the best hit of an index of its whole domain, not itself)
and `unrelated` (another image of the domain) references.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks import datasets
from benchmarks._common import DOCS_IMAGES, table, write_json
from chromaref.evaluation.report import diversity_by_method, summarise, write_report
from chromaref.evaluation.run import METHODS, evaluate, index_retriever
from chromaref.platform.assets import photos
from chromaref.retrieval.build import BuildConfig, build_index
from chromaref.retrieval.index import Index


def _bundled_photos(out: Path) -> None:
    out.mkdir(parents=True)
    for p in photos():
        if p.category != "painting":
            shutil.copy(p.path, out / p.path.name)


DOMAINS: dict[str, Callable[[Path], None]] = {
    "photos": _bundled_photos,
    "paintings": datasets.paintings,
    "animation": datasets.animation,
}


def _spread(folder: Path, out: Path, limit: int) -> None:
    """Copy `limit` images evenly spread over the sorted folder (not the first few)."""
    files = sorted(p for p in folder.iterdir() if p.suffix in {".jpg", ".png", ".webp"})
    step = max(1, len(files) // limit)
    out.mkdir()
    for path in files[::step][:limit]:
        shutil.copy(path, out / path.name)


def run_domain(name: str, work: Path, limit: int) -> dict | None:
    corpus = work / name / "corpus"
    try:
        DOMAINS[name](corpus)
    except datasets.MissingSourceError as error:
        print(f"{name}: skipped ({error})")
        return None
    _spread(corpus, work / name / "eval", limit)
    build_index(corpus, work / name / "index", config=BuildConfig(runner="local"))
    retrieve = index_retriever(Index.open(work / name / "index"))
    result = evaluate(work / name / "eval", methods=METHODS, retrieve=retrieve)
    report = write_report(result, work / name / "report", METHODS)
    # the docs show the most colorful truth: there is the most to get right (or wrong)
    colorful = max(
        (r for r in result.rows if r["method"] == "gray"), key=lambda r: r["colorfulness_gap"]
    )
    grid = report.parent / "grids" / f"{Path(str(colorful['image'])).stem}.jpg"
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    shutil.copy(grid, DOCS_IMAGES / f"transfer_{name}.jpg")
    summary = summarise(result)
    corpus_size = len(Index.open(work / name / "index"))
    print(f"\n{name}: {len(result.grids)} images, corpus {corpus_size}")
    columns = ["reference", "method", "psnr", "ssim_ab", "colorfulness_gap", "top5_agree"]
    print(table(columns, [[row[c] for c in columns] for row in summary]))
    return {
        "images": len(result.grids),
        "corpus": corpus_size,
        "summary": summary,
        "diversity": diversity_by_method(result),
        "skipped": result.skipped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=16, help="images evaluated per domain")
    parser.add_argument("--domains", default=",".join(DOMAINS), help="comma-separated")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="chromaref-transfer-") as tmp:
        results = {
            name: run_domain(name, Path(tmp), args.limit) for name in args.domains.split(",")
        }
    path = write_json("transfer", {"limit": args.limit, "domains": results})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
