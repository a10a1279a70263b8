"""The README's headline numbers, generated from the same results as the page; every line
keeps its qualifiers (what was measured, warm or cold, against what)."""

from __future__ import annotations

from benchmarks.report import Results, _load
from benchmarks.report_scale import largest_builds
from chromaref.platform.config import PipelineConfig

DEFAULT_METHOD = PipelineConfig().colorizer
LAYOUTS = {"folder": "a folder tree", "parquet": "Parquet files"}  # benchmarks.scale's corpora


def _headline_method(measured: set[str]) -> str:
    """The default colorizer when the results hold it, else training-free (older results)."""
    return DEFAULT_METHOD if DEFAULT_METHOD in measured else "training-free"


def readme_results() -> str:
    """The README's headline numbers, from the same results as the page."""
    quality, speed = _load("quality"), _load("speed")
    labelled, studies = _load("retrieval_labelled"), _load("studies")
    throughput, vectors = _load("retrieval_throughput"), _load("vector_index")
    scale = _load("scale")
    lines = []
    if quality:
        psnr = {key: v["psnr"] for key, v in quality["summary"].items()}
        ours = _headline_method({key.split("/")[1] for key in psnr})
        pairs = quality["summary"][f"same-scene/{ours}"]["n"]
        scenes = len(  # a pair is "target<-reference"; each scene is used both ways round
            {
                frozenset(p["pair"].split("<-"))
                for p in quality["pairs"]
                if p["kind"] == "same-scene"
            }
        )
        lines.append(
            f"- **Quality** ({pairs} same-scene pairs of real photos: {scenes} scenes, each "
            "photo of a scene colorized from the other; mean RGB PSNR against the "
            f"true colors): chromaref ({ours}) **{psnr[f'same-scene/{ours}']:.1f} dB** vs "
            f"{psnr['same-scene/welsh']:.1f} (Welsh 2002), {psnr['same-scene/reinhard']:.1f} "
            f"(Reinhard 2001) and {psnr['same-scene/gray']:.1f} (gray input). With an unrelated "
            f"reference it gets {psnr[f'unrelated/{ours}']:.1f} dB (gray input "
            f"{psnr['unrelated/gray']:.1f}) where the baselines lose "
            f"{psnr['unrelated/gray'] - psnr['unrelated/reinhard']:.1f}-"
            f"{psnr['unrelated/gray'] - psnr['unrelated/welsh']:.1f} dB."
        )
    if studies:
        gains = []
        for domain in ("paintings", "drawings", "animation"):
            found = studies["domains"].get(domain)
            if found:
                by = {(s["reference"], s["method"]): s["psnr"] for s in found["summary"]}
                ours = _headline_method({method for _, method in by})
                gain = by[("retrieved", ours)] - by[("retrieved", "gray")]
                note = " (another frame of the same clip)" if domain == "animation" else ""
                gains.append(f"{domain} {gain:+.1f} dB{note}")
        if gains:
            lines.append(
                f"- **Non-natural images**, chromaref ({ours}) with an automatically retrieved "
                f"reference, over the gray input: {', '.join(gains)}."
            )
    if labelled and labelled.get("labelled"):
        found = labelled["labelled"]
        default = found["ablation"]["semantic + luminance + local (default)"]
        lines.append(
            f"- **Retrieval**: a gray photo's top 5 references share its category "
            f"{default['precision@5']:.0%} of the time ({found['images']} labelled real photos, "
            f"{len(found['categories'])} categories)."
        )
    if speed:
        ours = _headline_method({r["method"] for r in speed["results"]})
        by_size = {r["size"]: r for r in speed["results"] if r["method"] == ours}
        if 512 in by_size and 2048 in by_size:
            small, large = by_size[512], by_size[2048]
            lines.append(
                f"- **Speed** of chromaref ({ours}) (2-core CPU, warm: after model load, the "
                "reference prepared once): "
                f"a 512 px photo in {small['median_s']['total']:.2f} s, a 2048 px one in "
                f"{large['median_s']['total']:.1f} s and {large['peak_rss_mb'] / 1024:.1f} GB peak"
                + _cold(speed.get("cold"), ours)
                + "."
            )
    if throughput and vectors:
        big = max((r for r in vectors["results"] if r["index"] == "auto"), key=lambda r: r["size"])
        exact = next(
            r for r in vectors["results"] if r["index"] == "flat" and r["size"] == big["size"]
        )
        t = throughput["throughput"]
        best, ratio = t["best_images_per_s"], t["ratio_to_network"]
        lines.append(
            f"- **Scale** (2-core CPU, {t['images']} ImageNet-like JPEGs, {t['precision']}): the "
            "index build end to end (model load, read, decode, checks, descriptors, writes, "
            f"FAISS) runs at {best['local']:.0f} images/s in process, {ratio['local']:.2f}x the "
            "descriptor network alone on the same JPEGs, and at "
            f"{best['ray']:.0f} images/s ({ratio['ray']:.2f}x) on Ray Data, whose start-up so "
            f"few images do not amortise{_at_scale(scale)}; at {big['size']:,} vectors FAISS "
            f"{big['kind'].upper()} "
            f"answers {big['qps'] / exact['qps']:.0f}x faster than exact search at recall@10 "
            f"{big['recall_at_10']:.3f}."
        )  # fmt: skip
    lines.append(
        "\nEvery number, with its command and machine: [docs/benchmarks.md](docs/benchmarks.md)."
    )
    grid = "\n![gray input | reference | chromaref | truth](docs/images/quality_same-scene.jpg)"
    return "\n".join(lines) + "\n" + grid


def _at_scale(scale: Results | None) -> str:
    """The Ray Data build on the largest corpus of `benchmarks.scale`, by layout, when run."""
    if not scale:
        return ""
    builds = largest_builds(scale)
    rates = {b["layout"]: b["images_per_s"] for b in builds}
    layouts = " and ".join(
        f"{rate:.0f} images/s from {LAYOUTS.get(layout, layout)}" for layout, rate in rates.items()
    )
    return (
        f"; on {builds[0]['size']:,} distinct such JPEGs, whole build included, Ray Data runs "
        f"at {layouts}"
    )


def _cold(cold: Results | None, method: str) -> str:
    """The cold whole-process ratio to Reinhard's, alone, when measured (`speed --cold-only`)."""
    rows = {(r["condition"], r["method"], r["kind"]): r for r in (cold or {}).get("rows", [])}
    ours, theirs = (
        rows.get(("alone", method, "cold")),
        rows.get(("alone", "reinhard", "cold")),
    )
    if ours is None or theirs is None:
        return ""
    ratio = ours["median_s"] / theirs["median_s"]
    return f"; cold, the whole `chromaref colorize` process takes {ratio:.2f}x Reinhard's"
