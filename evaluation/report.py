"""Write an evaluation as files people and scripts read: CSV, JSON, Markdown, grids, HTML."""

from __future__ import annotations

import csv
import html
import json
import statistics
from collections import defaultdict
from pathlib import Path

from chromaref.evaluation.plots import grouped_bars
from chromaref.evaluation.run import EvalResult
from chromaref.platform.files import atomic_path, atomic_write_text
from chromaref.platform.grid import make_grid
from chromaref.platform.images import save_image

METRICS = (
    "psnr",
    "psnr_ab",
    "ssim",
    "ssim_ab",
    "colorfulness",
    "colorfulness_gap",
    "top1_agree",
    "top5_agree",
    "reference_hist_distance",
)


def summarise(result: EvalResult) -> list[dict[str, object]]:
    """Mean of every metric per (reference kind, method), in first-seen order."""
    groups: dict[tuple[str, str], list[dict[str, object]]] = defaultdict(list)
    for row in result.rows:
        groups[(str(row["reference"]), str(row["method"]))].append(row)
    return [
        {
            "reference": kind,
            "method": method,
            "n": len(rows),
            **{m: statistics.fmean(float(r[m]) for r in rows) for m in METRICS},
        }
        for (kind, method), rows in groups.items()
    ]


def diversity_by_method(result: EvalResult) -> dict[str, float]:
    """Mean result diversity across references, per method."""
    methods = dict.fromkeys(str(d["method"]) for d in result.diversity)
    return {
        m: statistics.fmean(float(d["diversity"]) for d in result.diversity if d["method"] == m)
        for m in methods
    }


def markdown_table(summary: list[dict[str, object]]) -> str:
    headers = ["reference", "method", "n", *METRICS]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in summary:
        cells = [f"{row[h]:.3f}" if isinstance(row[h], float) else str(row[h]) for h in headers]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plot(summary: list[dict[str, object]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    kinds = list(dict.fromkeys(str(r["reference"]) for r in summary))
    methods = list(dict.fromkeys(str(r["method"]) for r in summary))
    fig, ax = plt.subplots(figsize=(8, 3.5))
    psnr = {(r["reference"], r["method"]): r["psnr"] for r in summary}
    grouped_bars(ax, kinds, {m: [psnr.get((k, m), 0) for k in kinds] for m in methods})
    ax.set(ylabel="RGB PSNR (dB, mean)", title="quality by reference and method")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return True


def write_report(result: EvalResult, out: Path, methods: tuple[str, ...]) -> Path:
    """Write metrics.csv, metrics.json, summary.md, grids/*.jpg, psnr.png and index.html."""
    summary = summarise(result)
    with atomic_path(out / "metrics.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["image", "reference", "method", *METRICS])
        writer.writeheader()
        writer.writerows(result.rows)
    diversity = diversity_by_method(result)
    payload = {
        "summary": summary,
        "diversity": diversity,
        "rows": result.rows,
        "diversity_rows": result.diversity,
        "skipped": result.skipped,
    }
    atomic_write_text(out / "metrics.json", json.dumps(payload, indent=2) + "\n")
    table = markdown_table(summary)
    diversity_md = "| method | diversity (mean ab distance between references' results) |\n"
    diversity_md += "|---|---|\n" + "".join(f"| {m} | {v:.2f} |\n" for m, v in diversity.items())
    atomic_write_text(out / "summary.md", table + "\n\n" + diversity_md)
    labels = [
        [f"gray input ({kind})", f"{kind} reference", *methods, "truth"] for kind in result.kinds
    ]
    grid_files = []
    for name, rows in result.grids.items():
        grid = make_grid(rows, labels=labels, cell_height=160)
        grid_files.append(save_image(grid, out / "grids" / f"{name}.jpg", format="jpg"))
    has_plot = _plot(summary, out / "psnr.png")
    atomic_write_text(
        out / "index.html", _html(table, summary, diversity, grid_files, has_plot, result, out)
    )
    return out / "index.html"


def _html(
    table: str,
    summary: list[dict[str, object]],
    diversity: dict[str, float],
    grids: list[Path],
    has_plot: bool,
    result: EvalResult,
    out: Path,
) -> str:
    headers = ["reference", "method", "n", *METRICS]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{row[h]:.3f}</td>" if isinstance(row[h], float) else f"<td>{row[h]}</td>"
            for h in headers
        )
        + "</tr>"
        for row in summary
    )
    plot = '<img src="psnr.png" alt="PSNR by method">' if has_plot else ""
    diversity_rows = "".join(
        f"<tr><td>{html.escape(m)}</td><td>{v:.2f}</td></tr>" for m, v in diversity.items()
    )
    pictures = "".join(
        f'<figure><img src="{html.escape(str(g.relative_to(out)))}" loading="lazy">'
        f"<figcaption>{html.escape(g.stem)}</figcaption></figure>"
        for g in grids
    )
    skipped = "".join(f"<li>{html.escape(p)}: {html.escape(r)}</li>" for p, r in result.skipped)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chromaref evaluation</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}img{{max-width:100%}}</style>
</head><body>
<h1>chromaref evaluation</h1>
<p>{len(result.grids)} photo(s); metrics against the true colors. Rows per reference kind
({" / ".join(result.kinds)}) and method. Columns of each grid: gray input, reference,
each method, truth.</p>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
{plot}
<h2>Diversity</h2>
<p>Mean per-pixel ab distance between the results of the different references of a photo:
one result per reference, and they should differ.</p>
<table><thead><tr><th>method</th><th>diversity</th></tr></thead><tbody>{diversity_rows}</tbody></table>
<h2>Results</h2>{pictures}
{"<h2>Skipped</h2><ul>" + skipped + "</ul>" if skipped else ""}
<!-- markdown summary:
{html.escape(table)}
-->
</body></html>
"""
