"""`chromaref index build|search` and `colorize --auto` as a user runs them."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from chromaref.cli.main import app
from chromaref.platform.assets import photo

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.mark.slow
def test_build_then_search_as_json_and_table(corpus, tmp_path):
    out = tmp_path / "idx"
    result = _invoke("index", "build", str(corpus), "--out", str(out), "--local", "--quiet")
    assert result.exit_code == 0, result.output
    assert "indexed" in result.output and "skipped 3 file(s)" in result.output
    query = tmp_path / "query.png"
    Image.open(photo("chelsea").path).convert("L").save(query)
    result = _invoke("index", "search", str(out), str(query), "--top", "3", "--json")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)
    assert len(hits) == 3
    assert set(hits[0]) >= {"uri", "semantic", "luminance", "local", "score", "label"}
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    table = _invoke("index", "search", str(out), str(query), "--top", "2")
    assert table.exit_code == 0 and "semantic" in table.output and "luminance" in table.output


@pytest.mark.slow
def test_build_chooses_the_faiss_index_from_options(corpus, tmp_path):
    out = tmp_path / "idx"
    args = ("--index-kind", "hnsw", "--pca-dim", "8", "--target-recall", "0.9", "--no-gpu")
    result = _invoke("index", "build", str(corpus), "--out", str(out), "--local", "-q", *args)
    assert result.exit_code == 0, result.output
    built = json.loads((out / "manifest.json").read_text())["vector_index"]
    assert (built["kind"], built["index_dim"], built["gpu"]) == ("hnsw", 8, False)
    bad = _invoke("index", "build", str(corpus), "--out", str(out), "--index-kind", "magic")
    assert bad.exit_code == 2 and "magic" in bad.output and "Traceback" not in bad.output


def test_search_errors_are_one_line(tmp_path):
    result = _invoke("index", "search", str(tmp_path), str(tmp_path / "q.png"))
    assert result.exit_code == 2
    assert "not a chromaref index" in result.output
    result = _invoke("index", "build", str(tmp_path / "missing"), "--out", str(tmp_path / "i"))
    assert result.exit_code == 2 and "does not exist" in result.output


@pytest.mark.slow
def test_colorize_auto_with_the_bundled_default_index(tmp_path, monkeypatch):
    monkeypatch.setenv("CHROMAREF_CACHE", str(tmp_path / "cache"))
    target = tmp_path / "old.png"
    Image.open(photo("leuven_a").path).convert("L").save(target)
    out = tmp_path / "out"
    result = _invoke("colorize", str(target), "--auto", "--top", "2", "--out", str(out), "-q")
    assert result.exit_code == 0, result.output
    results = sorted(p.name for p in out.glob("old__auto*.png"))
    assert len(results) == 2
    assert results[0].startswith("old__auto1-") and results[1].startswith("old__auto2-")
    # the same-scene photo is the best reference for this view
    assert results[0] in {"old__auto1-leuven_a.png", "old__auto1-leuven_b.png"}
    assert list((tmp_path / "cache" / "indexes").iterdir())  # built once, cached


def test_references_and_auto_are_exclusive(tmp_path):
    result = _invoke("colorize", str(tmp_path), "--auto", "-r", str(tmp_path / "x.jpg"))
    assert result.exit_code == 2 and "not both" in result.output
    result = _invoke("colorize", str(tmp_path))
    assert result.exit_code == 2 and "no reference" in result.output and "--auto" in result.output


@pytest.mark.slow
def test_out_may_be_the_current_folder_but_not_a_filesystem_root(corpus, tmp_path, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    result = _invoke("index", "build", str(corpus), "--out", ".", "--local", "-q")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "here" / "manifest.json").read_text())["count"] > 0
    root = _invoke("index", "build", str(corpus), "--out", "/", "--local", "-q")
    assert root.exit_code == 2 and "filesystem root" in root.output
