"""The training benchmark runs two real Ray Train runs (1 x 4 and 2 x 2, same seed), the
2-worker loss curve matches the 1-worker one within the stated tolerance, and the page's
training section is built from what it wrote. Throughput is not asserted here."""

from __future__ import annotations

import json
import math

import pytest
from test_suite_smoke import _run

from benchmarks.training import TOLERANCE

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def test_training_benchmark_tiny(tmp_path):
    _run("training", "--steps", "3", "--size", "64", "--batch", "4", out=tmp_path)
    results = json.loads((tmp_path / "results" / "training.json").read_text())
    assert results["command"] == "python -m benchmarks.training --steps 3 --size 64 --batch 4"
    assert "commit" in results["machine"] and len(results["loadavg"]["end"]) == 3
    one, two, control = results["runs"]
    shapes = [
        (r["workers"], r["batch_per_worker"], r["cpus_per_worker"], r["steps"])
        for r in results["runs"]
    ]
    assert shapes == [(1, 4, 1, 3), (2, 2, 1, 3), (1, 4, 2, 3)]
    assert one["dataset"] == two["dataset"] == control["dataset"]  # the same split
    assert one["dataset"]["train"] >= 30
    for run in results["runs"]:
        assert all(math.isfinite(v) for v in run["history"]["loss"])
        assert len(run["history"]["loss"]) == 3 and run["samples_per_s_median"] > 0
    # the same curve, step by step: recomputed here from the histories
    losses = zip(one["history"]["loss"], two["history"]["loss"], strict=True)
    diffs = [abs(b - a) / a for a, b in losses]
    comparison = results["comparison"]
    assert max(diffs) == pytest.approx(comparison["ddp"]["max_rel_loss_diff"])
    assert comparison["tolerance"] == TOLERANCE and max(diffs) <= TOLERANCE  # 3 steps: ~1e-7
    assert comparison["within_noise"] and comparison["ddp"]["weights_rel_diff"] < TOLERANCE
    # ... while the curve itself moves far more than that from step to step (the test has power)
    assert comparison["loss_step_change"] > 10 * TOLERANCE

    _run("report", out=tmp_path)
    page = (tmp_path / "benchmarks.md").read_text()
    section = page.split("## Training: Ray Train with 1 and 2 workers (CPU)\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    assert f"| 2 | 2 | 1 | 3 | {two['samples_per_s_median']:.2f} |" in section
    assert f"({comparison['ddp']['max_rel_loss_diff']:.1e} of the loss;" in section
    assert f"{comparison['speedup']:.2f}x the samples/s" in section and ": within." in section
    assert (tmp_path / "images" / "training_ddp.png").is_file()
