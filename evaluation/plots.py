"""Grouped bar charts: the one plot shape of evaluation reports and the benchmark page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def grouped_bars(ax: Any, groups: Sequence[str], series: Mapping[str, Sequence[float]]) -> None:
    """One cluster of bars per group on a matplotlib `ax`, one bar per series within it; the
    caller adds labels, limits and the legend."""
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        ax.bar([x + i * width for x in range(len(groups))], values, width, label=name)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(groups))], list(groups))
    ax.grid(axis="y", alpha=0.3)
