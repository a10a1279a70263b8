"""Colorization quality on real photos: chromaref vs gray input and classical baselines.

    python -m benchmarks.quality            # all bundled photos, writes results/quality.json
    python -m benchmarks.quality --grids    # also docs/images/quality_*.jpg

Each bundled color photo is turned gray and colorized from
  * another view of itself: a crop, mirrored and brighter (`other-view`),
  * a different photo of the same scene from another viewpoint (`same-scene`),
  * an unrelated photo of another category (`unrelated`, robustness only).
Metrics against the true colors: RGB PSNR and SSIM, and colorfulness (Hasler and
Suesstrunk 2003) with its gap to the truth; colorized and scored by `chromaref eval`'s own
functions (`chromaref.evaluation.run`), so the two cannot drift apart.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict

import numpy as np
import torch
from PIL import Image

from benchmarks._common import (
    DOCS_IMAGES,
    add_model_option,
    compared_methods,
    table,
    write_json,
)
from chromaref.evaluation.run import (
    colorize_each,
    method_pipelines,
    other_view,
    rgb_scores,
)
from chromaref.platform.assets import photos, same_scene_pairs
from chromaref.platform.color import gray_image
from chromaref.platform.grid import make_grid
from chromaref.platform.images import load_image
from chromaref.platform.metrics import colorfulness

KINDS = ("other-view", "same-scene", "unrelated")


def pairs(limit: int | None = None) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(kind, label, target truth RGB, reference RGB); at most `limit` pairs of each kind."""
    natural = [p for p in photos() if p.category != "painting"]
    rgb = {p.name: load_image(p.path).rgb for p in natural}
    out = [("other-view", p.name, rgb[p.name], other_view(rgb[p.name])) for p in natural]
    for a, b in same_scene_pairs():
        out.append(("same-scene", f"{a.name}<-{b.name}", rgb[a.name], rgb[b.name]))
        out.append(("same-scene", f"{b.name}<-{a.name}", rgb[b.name], rgb[a.name]))
    for i, p in enumerate(natural):
        other = next(q for q in natural[i + 1 :] + natural[:i] if q.category != p.category)
        out.append(("unrelated", f"{p.name}<-{other.name}", rgb[p.name], rgb[other.name]))
    if limit is None:
        return out
    return [pair for kind in KINDS for pair in [p for p in out if p[0] == kind][:limit]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", action="store_true", help="write example grids to docs/")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, help="at most this many pairs of each kind")
    add_model_option(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    methods, trained = compared_methods(args.model)
    pipelines = method_pipelines(methods, trained)
    scores: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    examples: dict[str, list[list[np.ndarray]]] = defaultdict(list)
    per_pair = []
    for kind, label, truth, reference in pairs(args.limit):
        gray = gray_image(truth)
        results = {
            m: out for m, [out] in colorize_each(gray, [reference], methods, pipelines).items()
        }
        truth_colorfulness = colorfulness(truth)
        row = {"kind": kind, "pair": label}
        for method, result in results.items():
            metrics = rgb_scores(result, truth, truth_colorfulness)
            scores[(kind, method)].append(metrics)
            row[method] = metrics
        per_pair.append(row)
        if len(examples[kind]) < 4:
            examples[kind].append([gray, reference, results["training-free"], truth])
        print(
            f"{kind:11s} {label:32s} " + " ".join(f"{m}={row[m]['psnr']:.2f}" for m in methods),
            flush=True,
        )

    summary_rows, summary = [], {}
    for kind in KINDS:
        for method in methods:
            runs = scores[(kind, method)]
            mean = {k: statistics.fmean(r[k] for r in runs) for k in runs[0]}
            summary[f"{kind}/{method}"] = {**mean, "n": len(runs)}
            summary_rows.append(
                [
                    kind,
                    method,
                    len(runs),
                    mean["psnr"],
                    mean["ssim"],
                    mean["colorfulness"],
                    mean["colorfulness_gap"],
                ]
            )
    print()
    headers = ["pairs", "method", "n", "PSNR dB", "SSIM", "colorfulness", "gap to truth"]
    print(table(headers, summary_rows))
    model = {"model": trained.model} if trained.model else {}
    path = write_json("quality", {"summary": summary, "pairs": per_pair, **model})
    print(f"\nwrote {path}")
    if args.grids:
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        for kind, rows in examples.items():
            labels = [["gray input", "reference", "chromaref", "truth"]] * len(rows)
            grid = make_grid(rows, labels=labels, cell_height=160)
            Image.fromarray(grid).save(DOCS_IMAGES / f"quality_{kind}.jpg", quality=88)
        print(f"wrote grids to {DOCS_IMAGES}")


if __name__ == "__main__":
    main()
