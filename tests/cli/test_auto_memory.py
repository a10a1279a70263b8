"""`colorize --auto` and `-r` over real indexes: references kept small and few, gray hits
skipped, and a run stopped by an index damaged mid-run still lists what it wrote."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from chromaref.cli._auto import MIN_CACHED, auto_references
from chromaref.cli._colorize import fixed_references
from chromaref.cli.main import app
from chromaref.platform.assets import photos
from chromaref.platform.grid import MAX_CELL_HEIGHT, MAX_CELL_WIDTH
from chromaref.platform.images import load_image
from chromaref.retrieval.build import BuildConfig, build_index
from chromaref.retrieval.index import Index

pytestmark = pytest.mark.slow

runner = CliRunner()
BIG = (1600, 1200)  # larger than a grid cell, so a reference kept whole would show


def _corpus(root: Path, count: int, size: tuple[int, int] | None = None) -> list[Path]:
    """`count` distinct bundled photos under root/<category>/, resized to `size` if given."""
    paths = []
    for p in photos()[:count]:
        (root / p.category).mkdir(parents=True, exist_ok=True)
        image = Image.open(p.path).convert("RGB")
        path = root / p.category / f"{p.path.stem}.jpg"
        (image.resize(size) if size else image).save(path, quality=92)
        paths.append(path)
    return paths


def _index(corpus: Path, out: Path) -> Path:
    build_index(corpus, out, config=BuildConfig(runner="local", shard_size=4))
    return out


def _gray(source: Path, path: Path, size: tuple[int, int] = (320, 240)) -> Path:
    Image.open(source).convert("L").resize(size).save(path)
    return path


def _invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def big_index(tmp_path_factory) -> tuple[Path, list[Path]]:
    """An index over more big photos than the reference cache holds: (index, photos)."""
    root = tmp_path_factory.mktemp("big")
    paths = _corpus(root / "corpus", MIN_CACHED + 3, BIG)
    return _index(root / "corpus", root / "index"), paths


def _assert_kept_small(reference) -> None:
    height, width = reference.rgb.shape[:2]
    assert height <= MAX_CELL_HEIGHT and width <= MAX_CELL_WIDTH, reference.rgb.shape
    # the L plane of a reference is its working copy's, never the photo's full resolution
    assert reference.prepared.l_full.shape[-2:] == reference.prepared.lab_work.shape[-2:]


def test_auto_cache_is_bounded_and_keeps_references_small(pipeline, big_index, tmp_path):
    index_dir, paths = big_index
    source = auto_references(pipeline, Index.open(index_dir), top=1)
    assert source.capacity == MIN_CACHED
    seen: list[str] = []
    for n, path in enumerate(paths):
        [reference] = source(load_image(_gray(path, tmp_path / f"q{n}.png")))
        seen.append(reference.prepared.name)
        assert len(source.cache) <= source.capacity
        _assert_kept_small(reference)
        assert reference.rgb.shape[0] == MAX_CELL_HEIGHT  # 1200 px high, shrunk to the cap
    assert len(set(seen)) > source.capacity, seen  # the bound was really exercised
    assert len(source.cache) == source.capacity
    cached = [r.prepared.name for r in source.cache.values()]
    assert cached == list(dict.fromkeys(seen))[-source.capacity :]  # least recently used went
    last = load_image(_gray(paths[-1], tmp_path / "again.png"))
    assert source(last)[0].prepared is source.cache[next(reversed(source.cache))].prepared


def test_fixed_references_are_kept_small_and_colorize_exactly_as_full_ones(
    pipeline, big_index, tmp_path
):
    _, paths = big_index
    [reference] = fixed_references(pipeline, [paths[0]])(None)
    _assert_kept_small(reference)
    assert reference.rgb.shape[:2] == (MAX_CELL_HEIGHT, round(BIG[0] * MAX_CELL_HEIGHT / BIG[1]))
    full = pipeline.prepare(load_image(paths[0]), name="full")
    assert full.l_full.shape[-2:] == (BIG[1], BIG[0])
    target = pipeline.prepare(load_image(_gray(paths[1], tmp_path / "t.png")))
    small_result = pipeline.colorize(target, reference.prepared).rgb
    assert small_result.shape[:2] == (240, 320)  # the target's full size
    assert np.array_equal(small_result, pipeline.colorize(target, full).rgb)


@pytest.fixture
def small_index(tmp_path) -> tuple[Path, list[Path]]:
    paths = _corpus(tmp_path / "corpus", 5)
    return _index(tmp_path / "corpus", tmp_path / "index"), paths


def test_a_gray_hit_is_skipped_and_the_target_colorized_from_the_others(small_index, tmp_path):
    index_dir, paths = small_index
    query = _gray(paths[2], tmp_path / "old.png")
    hits = Index.open(index_dir).search(load_image(query).rgb, 2)
    top_file = Path(hits[0].uri)
    assert top_file.resolve() in {p.resolve() for p in paths}
    Image.open(top_file).convert("L").convert("RGB").save(top_file, quality=92)  # now gray
    out = tmp_path / "out"
    result = _invoke(
        "colorize", str(query), "--auto", "--index", str(index_dir), "--top", "2", "-q",
        "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if "skipped reference" in line]
    assert len(warnings) == 1 and "no color to transfer" in warnings[0], result.output
    assert hits[0].name in warnings[0]
    written = sorted(p.name for p in out.iterdir())
    assert written == [f"old__auto2-{hits[1].name}.png", "old__grid.png"]


def _damage_when(ready: Path, npy: Path, timeout: float = 300.0) -> threading.Thread:
    """Flip the last bytes of `npy` in place (same size, as a disk error would) once `ready`
    exists: the index, opened before, is damaged while the run goes on."""

    def damage() -> None:
        deadline = time.monotonic() + timeout
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        with npy.open("r+b") as fh:
            fh.seek(-64, 2)
            data = fh.read(64)
            fh.seek(-64, 2)
            fh.write(bytes(b ^ 0xFF for b in data))

    thread = threading.Thread(target=damage, daemon=True)
    thread.start()
    return thread


def test_an_index_damaged_mid_run_stops_it_listing_the_files_written(small_index, tmp_path):
    index_dir, paths = small_index
    targets = tmp_path / "in"
    targets.mkdir()
    for name, path in zip("abc", paths, strict=False):
        _gray(path, targets / f"{name}.png")
    out = tmp_path / "out"
    thread = _damage_when(out / "a__grid.png", index_dir / "luminance.npy")
    result = _invoke(
        "colorize", str(targets), "--auto", "--index", str(index_dir), "--top", "1", "-q",
        "--out", str(out),
    )  # fmt: skip
    thread.join(timeout=10)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == [lines[-1]] and str(index_dir / "luminance.npy") in lines[-1], lines
    assert re.match(r"colorized [12]/3 image\(s\)", lines[0]), lines
    on_disk = {str(p) for p in out.rglob("*") if p.is_file()}
    listed = {line for line in lines if line.startswith(str(out))}
    assert listed == on_disk and str(out / "a__grid.png") in listed, (listed, on_disk)
    assert not any(p.startswith(str(out / "c__")) for p in on_disk)


def test_a_top_above_the_index_size_says_so_and_gives_what_there_is(small_index, tmp_path):
    index_dir, paths = small_index
    query = _gray(paths[0], tmp_path / "old.png")
    out = tmp_path / "out"
    result = _invoke(
        "colorize", str(query), "--auto", "--index", str(index_dir), "--top", "9", "-q",
        "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "--top 9, but the index holds 5 references: as many results each" in result.output
    assert len([p for p in out.iterdir() if "__auto" in p.name]) == 5
