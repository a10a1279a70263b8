"""The benchmark suite runs end to end (tiny settings), so it cannot rot between releases.

Timings are not asserted here: speed is measured by the benchmarks themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(module: str, *args: str, out: Path | None = None) -> None:
    """`python -m benchmarks.MODULE ARGS` from the repository root; results under `out`."""
    env = {k: v for k, v in os.environ.items() if k != "CHROMAREF_BENCH_OUT"}
    if out is not None:
        env["CHROMAREF_BENCH_OUT"] = str(out)
    command = [sys.executable, "-m", f"benchmarks.{module}", *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.slow
def test_benchmark_suite_smoke(tmp_path):
    _run("run", "--smoke", out=tmp_path)
    results = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "results").glob("*.json")}
    assert set(results) == {"speed", "quality", "studies", "retrieval_quality", "vector_index"}
    assert all(isinstance(r["machine"]["dirty"], bool) for r in results.values())
    assert all(r["machine"]["commit"] and "cpu" in r["machine"] for r in results.values())
    assert results["speed"]["command"] == "python -m benchmarks.speed --quick"
    speed = results["speed"]["results"]
    assert {r["method"] for r in speed} == {"training-free", "reinhard"}
    assert all(r["median_s"]["total"] > 0 and r["peak_rss_mb"] > 0 for r in speed)
    summary = results["quality"]["summary"]
    assert {"same-scene/training-free", "same-scene/reinhard", "unrelated/gray"} <= set(summary)
    # 3 augmented views of each of 35 photos: a random top 5 holds one of a query's own
    # views 14% of the time; the default ranking finds one for (nearly) every query
    default = results["retrieval_quality"]["ablation"]["semantic + luminance + local (default)"]
    assert default["recall@5"] >= 0.8 and default["recall@1"] >= 0.6
    study = results["studies"]["domains"]["photos"]
    assert study["images"] == 2 and study["corpus"] >= 30
    # the page is regenerated from these results, next to them
    page = (tmp_path / "benchmarks.md").read_text()
    sections = ["Quality on real photos", "The choice of reference, and non-natural images"]
    sections += ["Speed and memory (CPU)", "FAISS index at corpus scale"]
    assert all(f"## {section}\n" in page for section in sections)
    assert "Not measured yet: run `python -m benchmarks.retrieval --only throughput`" in page
    assert f"{speed[0]['median_s']['total']:.3f}" in page
    assert (tmp_path / "images" / "quality_psnr.png").is_file()


@pytest.mark.slow
def test_committed_benchmark_page_matches_the_committed_results():
    """docs/benchmarks.md and the README's results are generated: a hand edit or a forgotten
    regeneration fails here."""
    _run("report", "--check")


def test_provenance_says_when_numbers_come_from_uncommitted_code():
    from benchmarks._common import machine
    from benchmarks.report import _provenance

    clean = {**machine(), "commit": "abc1234", "dirty": False}
    dirty = {**clean, "commit": "abc1234-dirty", "dirty": True}
    assert "(commit `abc1234`, " in _provenance({"machine": clean}, "x")
    assert "(commit `abc1234-dirty` (uncommitted changes), " in _provenance({"machine": dirty}, "x")
    older = {k: v for k, v in clean.items() if k != "dirty"}  # records made before `dirty`
    assert _provenance({"machine": older}, "x") == _provenance({"machine": clean}, "x")


def test_a_run_that_saved_results_still_names_a_clean_commit(tmp_path, monkeypatch):
    """Only edits beyond the benchmarks' own outputs make a record `-dirty`."""
    import subprocess

    from benchmarks import _common

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "benchmarks" / "results" / "a.json").write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    monkeypatch.setattr(_common, "REPO_ROOT", tmp_path)
    (tmp_path / "benchmarks" / "results" / "a.json").write_text('{"new": 1}\n')
    assert not _common._commit().endswith("-dirty")
    (tmp_path / "code.py").write_text("x = 2\n")
    assert _common._commit().endswith("-dirty")
