"""The page's speed and memory section (warm stages, large images, cold CLI processes) and
the tables `benchmarks.speed` prints."""

from __future__ import annotations

from typing import Any

from benchmarks._common import DOCS_IMAGES, table
from benchmarks.report import METHOD_NAMES, Figure, Results, _opening

SPEED_HEADERS = [
    "long side",
    "MP",
    "total s",
    "features",
    "correspondence",
    "colorize",
    "convert",
    "io",
    "Reinhard s",
    "ratio",
    "peak RSS MB",
    "Reinhard peak MB",
]


def speed_table(results: list[Results]) -> str:
    """One row per size: chromaref's stage timings next to the Reinhard baseline's, and the
    trained colorizer's total and peak memory when it was measured too."""
    trained = any(r["method"] == "trained" for r in results)
    headers = SPEED_HEADERS + (["trained s", "trained peak MB"] if trained else [])
    rows = []
    for size in sorted({r["size"] for r in results}):
        ours, base, learned = (
            next((r for r in results if r["size"] == size and r["method"] == m), None)
            for m in ("training-free", "reinhard", "trained")
        )
        s = ours["median_s"]
        rows.append(
            [size, f"{ours['pixels'] / 1e6:.2f}", s["total"], s.get("features", 0.0),
             s.get("correspondence", 0.0), s.get("colorize", 0.0), s.get("convert", 0.0),
             s.get("io", 0.0), base["median_s"]["total"],
             f"{s['total'] / base['median_s']['total']:.1f}x", f"{ours['peak_rss_mb']:.0f}",
             f"{base['peak_rss_mb']:.0f}"]
        )  # fmt: skip
        if trained:
            rows[-1] += [learned["median_s"]["total"], f"{learned['peak_rss_mb']:.0f}"]
    return table(headers, rows)


def cold_table(rows: list[Results]) -> str:
    """One row per condition: whole-process (cold) and in-process repeat (warm) CLI medians of
    each chromaref method measured (the default first) and Reinhard's, and the default's cold
    ratio to Reinhard's."""
    rows_by = {(r["condition"], r["method"], r["kind"]): r for r in rows}
    measured = {r["method"] for r in rows}
    ours = [m for m in ("trained", "training-free") if m in measured]
    methods = [*ours, "reinhard"]
    headers = ["condition", *(f"{METHOD_NAMES[m]} cold s" for m in methods),
               f"cold ratio ({ours[0]} / Reinhard)",
               *(f"{METHOD_NAMES[m]} warm s" for m in methods), "load avg"]  # fmt: skip
    out = []
    for condition in dict.fromkeys(r["condition"] for r in rows):
        s = {
            (m, k): rows_by[(condition, m, k)]["median_s"]
            for m in methods
            for k in ("cold", "warm")
        }
        loads = [run["load_avg"] for r in rows if r["condition"] == condition for run in r["runs"]]
        out.append(
            [condition, *(s[m, "cold"] for m in methods),
             f"{s[ours[0], 'cold'] / s['reinhard', 'cold']:.2f}x",
             *(s[m, "warm"] for m in methods), f"{min(loads):.1f}-{max(loads):.1f}"]
        )  # fmt: skip
    return table(headers, out)


LARGE_HEADERS = ["megapixels", "size", "total s", "peak RSS MB", "budget MB", "within budget"]


def large_rows(results: list[Results]) -> list[list[Any]]:
    """One row per large target: the whole `chromaref colorize` run's peak RSS vs its budget."""
    return [
        [f"{r['pixels'] / 1e6:.1f}", f"{r['width']}x{r['height']}", r["total_s"],
         f"{r['peak_rss_mb']:.0f}", f"{r['budget_mb']:.0f}",
         "yes" if r["peak_rss_mb"] <= r["budget_mb"] else "NO"]
        for r in results
    ]  # fmt: skip


def speed_section(results: Results | None, device: str, figures: list[Figure]) -> str:
    text = _opening(
        f"## Speed and memory ({device.upper()})",
        "python -m benchmarks.speed" + ("" if device == "cpu" else f" --device {device}"),
        results,
        "Each size and method in a fresh process; median of the runs after a warm-up; end to "
        "end after model load: read the target file, Lab + features, correspondence, colorize, "
        "Lab -> RGB with the exact L, PNG encode. Target: the bundled `aloe_l` photo resized to "
        "the long side; reference: `aloe_r` (prepared once). Baseline in the same run: "
        "Reinhard's global transfer through the same code path.\n\n",
    )
    if results is None:
        return text
    text += speed_table(results["results"]) + "\n\n"
    text += (
        "The correspondence costs the same at every size (matching runs on a copy capped at "
        "256 px); what grows with the pixels is full-resolution Lab conversion, upsampling and "
        "encoding, which the Reinhard baseline pays too.\n\n"
    )
    if results.get("large"):
        text += (
            "Large images, cold and end to end: `chromaref colorize BIG.jpg -r aloe_r.jpg` in a "
            "fresh process (model load, JPEG decode, colorize, PNG result and grid), `aloe_l` "
            "upscaled; the budget is 1 GB + 30 bytes per input pixel.\n\n"
        )
        text += table(LARGE_HEADERS, large_rows(results["large"])) + "\n\n"
    cold = results.get("cold")
    if cold:
        m = cold["machine"]
        text += (
            f"Cold vs warm through the CLI, {cold['size']} px `aloe_l` from `aloe_r` "
            f"(`{cold['command']}`, commit {m['commit']}, {m['date']}, {m['cpu_count']} CPUs). "
            "**Cold**: the whole `chromaref colorize T.png -r R.jpg` process, start to exit "
            "(interpreter, imports, model load, one image, result and grid PNGs); median of "
            f"{len(cold['rows'][0]['runs'])} fresh processes, methods interleaved. **Warm**: "
            "the same command invoked again in one process (imports and kernel set-up "
            "excluded; model load and file I/O included). *Beside a busy process*: a "
            "`while True: pass` process runs alongside (unpinned); *OpenMP spinning*: "
            "OMP_WAIT_POLICY=ACTIVE, OpenMP's default, which the CLI now replaces with PASSIVE "
            "unless the user set it. Load avg: the machine's 1-minute load before each run "
            "(it is shared, so *alone* is not idle).\n\n"
        )
        text += cold_table(cold["rows"]) + "\n\n"
    if len({r["size"] for r in results["results"]}) > 1:
        path = DOCS_IMAGES / f"speed_{device}.png"
        figures.append(Figure(path, lambda fig: _speed_plot(fig, results["results"]), (10, 3.8)))
        text += figures[-1].link() + "\n"
    return text


def _speed_plot(fig: Any, results: list[Results]) -> None:
    ax_t, ax_m = fig.subplots(1, 2)
    for method in sorted({r["method"] for r in results}):
        rows = sorted((r for r in results if r["method"] == method), key=lambda r: r["pixels"])
        mp = [r["pixels"] / 1e6 for r in rows]
        label = METHOD_NAMES[method]
        ax_t.plot(mp, [r["median_s"]["total"] for r in rows], "o-", label=label)
        ax_m.plot(mp, [r["peak_rss_mb"] / 1024 for r in rows], "o-", label=label)
    ax_t.set(xlabel="megapixels", ylabel="seconds (median, after model load)", title="latency")
    ax_m.set(xlabel="megapixels", ylabel="peak RSS (GB)", title="peak memory")
    for ax in (ax_t, ax_m):
        ax.grid(alpha=0.3)
        ax.legend()


# -- retrieval -------------------------------------------------------------------------------
