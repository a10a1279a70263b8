"""Regenerate docs/benchmarks.md, its plots and the README's results from the results JSON.

    python -m benchmarks.report            # rewrite docs/benchmarks.md, docs/images/*.png, README
    python -m benchmarks.report --check    # exit 1 if the page or the README is out of date

`python -m benchmarks.run` calls it at the end, so the page always shows the latest results;
every section names the command, commit, date and machine of its numbers. Sections whose
results are missing say which command produces them. Text here explains methods; every number
comes from the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._common import DOCS_IMAGES, REDIRECTED, REPO_ROOT, RESULTS_DIR, table
from chromaref.evaluation.plots import grouped_bars
from chromaref.platform.files import atomic_write_text

Results = dict[str, Any]
DOC = DOCS_IMAGES.parent / "benchmarks.md"
README = REPO_ROOT / "README.md"
METHOD_NAMES = {
    "gray": "gray input",
    "reinhard": "Reinhard 2001",
    "welsh": "Welsh 2002",
    "training-free": "chromaref (training-free)",
    "trained": "chromaref (trained)",
}
VECTOR_HEADERS = [
    "vectors",
    "index",
    "search params",
    "build s",
    "peak RSS GB",
    "index MB",
    "queries/s",
    "vs exact",
    "recall@10",
    "tuned recall@10",
]


def _load(name: str) -> Results | None:
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _opening(heading: str, command: str, results: Results | None, method: str) -> str:
    """A section's heading, then where its numbers come from and how they were measured, or,
    without results, the command that measures them."""
    if results is None:
        return f"{heading}\n\n{_missing(command)}"
    return f"{heading}\n\n{_provenance(results, command)}\n\n{method}"


def _provenance(results: Results, default_command: str) -> str:
    m = results["machine"]
    device = f"GPU {m['gpu']}" if m.get("gpu") else "no GPU"
    command = results.get("command", default_command)
    threads = f"{m['torch_threads']} torch thread" + ("s" if m["torch_threads"] != 1 else "")
    dirty = " (uncommitted changes)" if m.get("dirty") else ""  # older records lack `dirty`
    return (
        f"Command: `{command}` (commit `{m['commit']}`{dirty}, {m['date']}; {m['cpu_count']}-core "
        f"{m['cpu']}, {device}, torch {m['torch']}, {threads})."
    )


def _missing(command: str) -> str:
    return f"Not measured yet: run `{command}`.\n"


@dataclass(frozen=True)
class Figure:
    """A plot of the page: drawn by `draw` into a matplotlib figure of `size` inches."""

    path: Path
    draw: Callable[[Any], None]
    size: tuple[float, float]

    def link(self) -> str:
        return f"![{self.path.stem}](images/{self.path.name})"

    def save(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=self.size)
        self.draw(fig)
        fig.tight_layout()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(self.path, dpi=110, metadata={"Software": None})
        plt.close(fig)


# -- quality ---------------------------------------------------------------------------------


def quality_section(results: Results | None, figures: list[Figure]) -> str:
    text = _opening(
        "## Quality on real photos",
        "python -m benchmarks.quality --grids",
        results,
        "Each bundled photo is turned gray (its CIELAB L) and colorized from **other-view** "
        "(another view of the same photo: an off-centre 80% crop, mirrored and 15% brighter), "
        "**same-scene** (a different photo of the same scene from another viewpoint) or "
        "**unrelated** (a photo of another category, to check that a bad reference does no "
        "harm). Metrics against the true colors: RGB PSNR and SSIM (scikit-image), "
        "colorfulness (Hasler and Suesstrunk 2003) and its gap to the truth's.\n\n",
    )
    if results is None:
        return text
    summary = results["summary"]
    kinds = list(dict.fromkeys(key.split("/")[0] for key in summary))
    rows = [
        [kind, METHOD_NAMES.get(method, method), s["n"], s["psnr"], s["ssim"],
         s["colorfulness"], s["colorfulness_gap"]]
        for key, s in summary.items()
        for kind, method in [key.split("/")]
    ]  # fmt: skip
    text += table(["pairs", "method", "n", "PSNR dB", "SSIM", "colorfulness", "gap to truth"], rows)
    text += "\n\n" + _quality_findings(summary, kinds) + "\n\n"
    figures.append(
        Figure(DOCS_IMAGES / "quality_psnr.png", lambda fig: _bars(fig, summary, kinds), (8, 3))
    )
    text += figures[-1].link()
    for kind in kinds:
        if (DOCS_IMAGES / f"quality_{kind}.jpg").is_file():
            text += f"\n\n{kind} (gray input | reference | chromaref | truth):\n\n"
            text += f"![{kind} grid](images/quality_{kind}.jpg)"
    return text + "\n"


def _quality_findings(summary: Results, kinds: list[str]) -> str:
    lines = []
    for kind in kinds:
        ours, gray = summary[f"{kind}/training-free"]["psnr"], summary[f"{kind}/gray"]["psnr"]
        baselines = {
            m: summary[f"{kind}/{m}"]["psnr"]
            for m in ("reinhard", "welsh")
            if f"{kind}/{m}" in summary
        }
        best = max(baselines, key=baselines.get) if baselines else None
        line = f"- {kind}: chromaref (training-free) {ours:.2f} dB, {ours - gray:+.2f} dB over gray"
        if best:
            line += f", {ours - baselines[best]:+.2f} dB over the best baseline ({best})"
        lines.append(line + ".")
    return "\n".join(lines)


def _bars(fig: Any, summary: Results, kinds: list[str]) -> None:
    ax = fig.add_subplot()
    methods = list(dict.fromkeys(key.split("/")[1] for key in summary))
    series = {
        METHOD_NAMES.get(m, m): [summary.get(f"{k}/{m}", {}).get("psnr", 0.0) for k in kinds]
        for m in methods
    }
    grouped_bars(ax, kinds, series)
    top = max(s["psnr"] for s in summary.values())
    ax.set(ylabel="RGB PSNR (dB, mean)", ylim=(10, top + 4), title="quality by reference kind")
    ax.legend(fontsize=7, ncol=len(methods))


# -- the paper's studies: choice of reference, non-natural images ---------------------------


def studies_section(results: Results | None, figures: list[Figure]) -> str:
    text = _opening(
        "## The choice of reference, and non-natural images",
        "python -m benchmarks.studies",
        results,
        "The paper's studies with `chromaref eval`'s protocol, per domain: `photos` (the "
        "bundled real photos), `labelled` (real photos in 5 category folders), `paintings` "
        "(crops of paintings), `drawings` (colored illustrations) and `animation` (frames of "
        "`Megamind.avi`); all but the first from Debian packages (`python -m "
        "benchmarks.datasets`). Each image is turned gray and colorized from a `given` "
        "reference (another view of itself), a `retrieved` one (the best hit of an index of the"
        " whole domain, never itself), a `same-category` one (a random photo of its category) "
        "and an `unrelated` one (another category's photo, or for flat domains any other image;"
        " for `animation` that is another frame of the same short clip). Mean RGB PSNR per "
        "method; ab SSIM (the structure of the chroma alone) and top-5 agreement (EfficientNet-"
        "Lite0's top class on the true colors is in its top 5 on the result) for chromaref "
        "(training-free).\n\n",
    )
    if results is None:
        return text
    methods = ["gray", "reinhard", "welsh", "training-free"]
    if "model" in results:  # `--model`: the trained colorizer's column too
        methods.append("trained")
    rows = []
    for domain, found in results["domains"].items():
        if found is None:
            text += f"- {domain}: skipped (its Debian package is not installed).\n"
            continue
        by = {(s["reference"], s["method"]): s for s in found["summary"]}
        for kind in found["kinds"]:
            ours = by[(kind, "training-free")]
            psnrs = [by[(kind, m)]["psnr"] for m in methods]
            rows.append([domain, kind, ours["n"], *psnrs, ours["ssim_ab"], ours["top5_agree"]])
    headers = ["domain", "reference", "n", *(f"{METHOD_NAMES[m]} dB" for m in methods)]
    text += "\n" + table([*headers, "training-free ab SSIM", "training-free top-5 agree"], rows)
    text += "\n\n" + _studies_findings(results["domains"]) + "\n\n"
    domains = {name: found for name, found in results["domains"].items() if found}
    path = DOCS_IMAGES / "studies_gain.png"
    figures.append(Figure(path, lambda fig: _gain_bars(fig, domains), (9, 3.2)))
    text += figures[-1].link() + "\n"
    for domain, found in results["domains"].items():
        if found and (DOCS_IMAGES / f"study_{domain}.jpg").is_file():
            text += (
                f"\n{domain} (rows: {' / '.join(found['kinds'])} reference; columns: gray input, "
                "reference, gray, Reinhard, Welsh, chromaref, truth):\n\n"
                f"![{domain} grid](images/study_{domain}.jpg)\n"
            )
    return text


def _gain_bars(fig: Any, domains: Results) -> None:
    """chromaref's PSNR gain over the gray input, per domain and reference kind."""
    ax = fig.add_subplot()
    present = {kind for found in domains.values() for kind in found["kinds"]}
    kinds = [k for k in ("given", "retrieved", "same-category", "unrelated") if k in present]
    series = {}
    for kind in kinds:
        series[kind] = []
        for found in domains.values():
            by = {(s["reference"], s["method"]): s["psnr"] for s in found["summary"]}
            has = (kind, "training-free") in by
            series[kind].append(by[(kind, "training-free")] - by[(kind, "gray")] if has else 0.0)
    grouped_bars(ax, list(domains), series)
    ax.axhline(0, color="k", linewidth=0.8)
    ax.set(ylabel="PSNR gain over gray (dB)", title="chromaref by domain and reference")
    ax.legend(fontsize=7, ncol=len(kinds))


def _studies_findings(domains: Results) -> str:
    lines = []
    for domain, found in domains.items():
        if found is None:
            continue
        by = {(s["reference"], s["method"]): s["psnr"] for s in found["summary"]}
        gains = [
            f"{kind} {by[(kind, 'training-free')] - by[(kind, 'gray')]:+.2f} dB"
            for kind in found["kinds"]
        ]
        diversity = found["diversity"].get("training-free", 0.0)
        trained = ""
        if all((kind, "trained") in by for kind in found["kinds"]):
            versus = [
                f"{kind} {by[(kind, 'trained')] - by[(kind, 'training-free')]:+.2f} dB"
                for kind in found["kinds"]
            ]
            trained = f" The trained colorizer vs training-free: {', '.join(versus)}."
        lines.append(
            f"- {domain} ({found['images']} images, corpus {found['corpus']}): training-free over "
            f"the gray input: {', '.join(gains)}; diversity across references {diversity:.1f}."
            + trained
        )
    return "\n".join(lines)


# -- speed -----------------------------------------------------------------------------------


def retrieval_section(views: Results | None, labelled: Results | None) -> str:
    text = "## Retrieval quality (the paper's section 3 ablation)\n\n"
    text += _opening(
        "### Augmented views",
        "python -m benchmarks.retrieval --only quality",
        views,
        "Every bundled photo gets 3 augmented views in the corpus (70-95% crop, maybe "
        "mirrored, brightness and contrast +-20%, rotation +-8 degrees), in category folders; "
        "each query is the **gray** version of a fourth, held-back view. recall@k: a view of "
        "the same photo is in the top k. precision@5: share of the top 5, the photo's own "
        "views excluded, with the query's category.\n\n",
    )
    if views is not None:
        rows = [
            [k, v["recall@1"], v["recall@5"], v["precision@5"]]
            for k, v in views["ablation"].items()
        ]
        text += table(["ranking", "recall@1", "recall@5", "precision@5"], rows) + "\n"
    found = labelled and labelled.get("labelled")
    text += "\n" + _opening(
        "### Labelled real photos",
        "python -m benchmarks.retrieval --only labelled",
        labelled if found else None,
        "Wikimedia photos of Debian `gcompris-qt-data` (needs that package) in category "
        "folders (`python -m benchmarks.datasets labelled`). Leave-one-out: each photo, turned "
        "gray, queries the index of all the others; precision@k is the share of the top k with "
        "its category. The last row adds the paper's class filter: candidates whose predicted "
        "top-1 ImageNet class (EfficientNet-Lite0 on the gray image) is the query's come first.",
    )
    if not found:
        return text
    text += (
        f" Here: {found['images']} photos, {len(found['categories'])} categories "
        f"({', '.join(found['categories'])}).\n\n"
    )
    rows = [[k, v["precision@1"], v["precision@5"]] for k, v in found["ablation"].items()]
    return text + table(["ranking", "precision@1", "precision@5"], rows) + "\n"


def throughput_section(results: Results | None) -> str:
    text = _opening(
        "## Descriptor throughput: Ray Data and in-process builds vs the hardware's bound",
        "python -m benchmarks.retrieval --only throughput",
        results,
        "Both builds run the same `build_index` end to end (model load, read, decode, gray and "
        "duplicate checks, descriptors, Parquet shards, FAISS, manifest) on the same "
        "ImageNet-like JPEGs (bundled photos re-encoded at 500x375); starting Ray itself is left "
        "out. The bound: the descriptor network alone on ready thumbnails (2 threads), and "
        "decoding alone (read, decode, checks, thumbnail; 1 core). The machine is shared, so the "
        "variants run in turn, each round with its load average; best of the rounds.\n\n",
    )
    if results is None:
        return text
    t = results["throughput"]
    best, ratio = t["best_images_per_s"], t["ratio_to_network"]
    rows = [
        ["descriptor network alone (bound)", best["network"], "1.00"],
        ["decode alone (1 core)", best["decode"], "-"],
        ['in-process build (`runner="local"`)', best["local"], f"{ratio['local']:.2f}"],
        ["Ray Data build", best["ray"], f"**{ratio['ray']:.2f}**"],
    ]
    head = f"{t['images']} images of {t['mean_jpeg_kb']:.0f} KB on average, {t['precision']}.\n\n"
    rates = table(["variant", "images/s", "ratio to the network"], rows)
    names = ("read", "decode", "infer", "write", "index")
    stages = [
        [r["variant"], f"{r['images_per_s']:.1f}", f"{r['loadavg_1m']:.1f}",
         f"{t['images'] / r['images_per_s']:.1f}"]
        + [f"{r['stage_seconds'][name]:.1f}" for name in names]
        for r in t["rounds"]
        if r["stage_seconds"]
    ]  # fmt: skip
    split = table(["build", "images/s", "load", "wall s", *(f"{name} s" for name in names)], stages)
    note = (
        "\n\nStage seconds of every build round (read, decode, infer summed over workers). "
        "Wall time beyond the stages' sum over the cores is start-up (model load, Ray Data "
        "planning and actors), which a small corpus does not amortise; the corpus-scale build "
        "below measures the rate at 10,000 and 20,000 images.\n"
    )
    return text + head + rates + note + "\n" + split + "\n"


# -- FAISS -----------------------------------------------------------------------------------


def vector_index_rows(results: list[Results]) -> list[list[Any]]:
    rows = []
    for r in results:
        exact = next(x for x in results if x["size"] == r["size"] and x["index"] == "flat")
        tuned = r["tuned_recall_at_10"]
        rows.append(
            [f"{r['size']:,}",
             r["kind"] + (" (auto)" if r["index"] == "auto" else "")
             + (f" (PCA {r['index_dim']})" if r["index_dim"] != r["dim"] else ""),
             ",".join(f"{k}={v}" for k, v in r["search_params"].items()) or "-",
             f"{r['build_s']:.1f}", f"{r['peak_rss_gb']:.2f}", f"{r['index_bytes'] / 2**20:.0f}",
             f"{r['qps']:.0f}", f"{r['qps'] / exact['qps']:.1f}x", f"{r['recall_at_10']:.3f}",
             "-" if tuned is None else f"{tuned:.3f}"]
        )  # fmt: skip
    return rows


def vector_index_section(results: Results | None, figures: list[Figure]) -> str:
    text = _opening(
        "## FAISS index at corpus scale",
        "python -m benchmarks.vector_index",
        results,
        "Synthetic **clustered** vectors at the real semantic dimension (random vectors give "
        "meaningless recall) and fresh queries from the same law; each (size, index) in its own "
        "process, so peak RSS (which includes the input vectors) is its own. recall@10 is "
        "against exact search; tuned recall is what the build measured when it chose its "
        "search parameters.",
    )
    if results is None:
        return text
    text += (
        f" Here: {results['dim']}-d vectors, {results['queries']:,} queries, "
        f"top-{results['k']}, {results['threads']} FAISS threads.\n\n"
    )
    text += table(VECTOR_HEADERS, vector_index_rows(results["results"])) + "\n\n"
    largest = max(r["size"] for r in results["results"])
    auto, exact = (
        next(r for r in results["results"] if r["size"] == largest and r["index"] == kind)
        for kind in ("auto", "flat")
    )
    text += (
        f"At {largest:,} vectors the automatic choice ({auto['kind']}) answers "
        f"{auto['qps'] / exact['qps']:.0f}x the exact search's queries/s at recall@10 "
        f"{auto['recall_at_10']:.3f}. Peak memory grows linearly with the corpus (it includes "
        "the input vectors).\n\n"
    )
    if len({r["size"] for r in results["results"]}) > 1:
        path = DOCS_IMAGES / "vector_index_cost.png"
        figures.append(Figure(path, lambda fig: _vector_plot(fig, results["results"]), (10, 3.8)))
        text += figures[-1].link() + "\n"
    return text


def _vector_plot(fig: Any, results: list[Results]) -> None:
    ax_t, ax_m = fig.subplots(1, 2)
    for which, style, color in (("flat", "o-", "C0"), ("auto", "s-", "C1")):
        rows = [r for r in results if r["index"] == which]
        n = [r["size"] for r in rows]
        kinds = "/".join(r["kind"] for r in rows)
        label = "exact Flat" if which == "flat" else f"auto ({kinds})"
        ax_t.plot(n, [r["build_s"] for r in rows], style, color=color, label=f"{label}: build")
        ax_t.plot(n, [r["search_s_per_1000"] for r in rows], style[0] + "--", color=color,
                  alpha=0.6, label=f"{label}: 1000 queries")  # fmt: skip
        ax_m.plot(n, [r["peak_rss_gb"] for r in rows], style, color=color, label=label)
    flat = [r for r in results if r["index"] == "flat"]
    ax_m.plot([r["size"] for r in flat], [r["data_bytes"] / 2**30 for r in flat], "k:",
              label="input vectors alone")  # fmt: skip
    ax_t.set(xlabel="corpus size (vectors)", ylabel="seconds", title="build and search time")
    ax_m.set(xlabel="corpus size (vectors)", ylabel="peak RSS (GB)", title="peak memory")
    for ax in (ax_t, ax_m):
        ax.set(xscale="log", yscale="log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)


# -- the page --------------------------------------------------------------------------------

HEADER = """# Benchmarks

<!-- Generated by `python -m benchmarks.report` from benchmarks/results/*.json: edit the
scripts, not this page. -->

Every number here comes from a script in `benchmarks/`, run as a module from the repository
root (`python -m benchmarks.NAME`); each writes JSON with its command, machine, date and commit
to `benchmarks/results/`, and this page is regenerated from those files. `python -m
benchmarks.run [--quick] [--gpu]` runs them all and regenerates the page; the test suite runs
`--smoke` (tiny settings, results written elsewhere) so the benchmarks cannot rot. How the
colorizer's defaults were chosen: [tuning.md](tuning.md).
"""


def _with_readme_results(readme: str) -> str:
    start, end = "<!-- results:start -->\n", "<!-- results:end -->"
    head, rest = readme.split(start, 1)
    from benchmarks.report_readme import readme_results  # here: it imports this module

    return head + start + readme_results() + "\n" + end + rest.split(end, 1)[1]


def render() -> tuple[str, list[Figure]]:
    """The whole page from the results on disk, and the plots it links to."""
    from benchmarks.report_cluster import cluster_section  # here: they import this module
    from benchmarks.report_scale import scale_section
    from benchmarks.report_serving import serving_section
    from benchmarks.report_speed import speed_section
    from benchmarks.report_training import training_section
    from benchmarks.report_video import video_section

    gpu = _load("speed_cuda")
    figures: list[Figure] = []
    sections = [
        HEADER,
        quality_section(_load("quality"), figures),
        studies_section(_load("studies"), figures),
        speed_section(_load("speed"), "cpu", figures),
        retrieval_section(_load("retrieval_quality"), _load("retrieval_labelled")),
        throughput_section(_load("retrieval_throughput")),
        scale_section(_load("scale")),
        vector_index_section(_load("vector_index"), figures),
        serving_section(_load("serving"), figures),
        video_section(_load("video")),
        training_section(_load("training"), figures),
        cluster_section(_load("cluster_scaling")),
        speed_section(gpu, "cuda", figures)
        if gpu
        else "## GPU\n\nNo GPU figures yet: run `python -m benchmarks.run --gpu` on a CUDA "
        "machine (CUDA pipeline, descriptor actors with `num_gpus=1`, FAISS on GPU).\n",
    ]
    return "\n".join(sections), figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the page is out of date")
    args = parser.parse_args()
    page, figures = render()
    readme = README.read_text()
    if args.check:
        if not DOC.is_file() or DOC.read_text() != page:
            sys.exit(f"{DOC} is out of date: run `python -m benchmarks.report`")
        if readme != _with_readme_results(readme):
            sys.exit(f"{README}'s results are out of date: run `python -m benchmarks.report`")
        return
    if not REDIRECTED:  # a redirected (smoke) run leaves the README (hand-edited too) alone
        atomic_write_text(README, _with_readme_results(readme))
    for figure in figures:
        figure.save()
    atomic_write_text(DOC, page)
    print(f"wrote {DOC} and {len(figures)} plot(s)")


if __name__ == "__main__":
    main()
