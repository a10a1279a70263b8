"""Concurrent builds as users start them: real `chromaref` processes racing on one --out and on
the first-use default index, and a damaged cached default index."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chromaref.platform.assets import photo
from chromaref.platform.errors import ConfigError
from chromaref.platform.files import sha256_file
from chromaref.platform.locks import exclusive, lock_file
from chromaref.retrieval import store
from chromaref.retrieval.default import CACHE_ENV, default_index
from chromaref.retrieval.index import Index

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CLI = str(Path(sys.executable).parent / "chromaref")
LOCKED = "is in use by pid"


def _start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out + err


def _assert_complete(out: Path, expected: Index) -> None:
    """The index holds every usable image once, and its manifest agrees with its files."""
    index = Index.open(out)
    manifest = index.manifest
    assert index.rows["id"] == expected.rows["id"]
    count = len(expected)
    assert manifest["count"] == count == index.vectors.count
    for name in ("semantic", "luminance", "local"):
        assert np.load(out / f"{name}.npy", mmap_mode="r").shape[0] == count
    for shard in manifest["shards"]:
        assert sha256_file(out / shard["file"]) == shard["sha256"]
    assert sum(s["rows"] for s in manifest["shards"]) == count + len(manifest["skipped"])
    assert not lock_file(out).exists()
    assert not out.with_name(out.name + ".building").exists()


def test_two_builds_into_one_out_leave_one_complete_index(corpus, local_index, tmp_path):
    out = tmp_path / "idx"
    procs = [_start("index", "build", str(corpus), "--out", str(out), "--local") for _ in "ab"]
    results = [_finish(p) for p in procs]
    for (code, text), other in zip(results, reversed(procs), strict=True):
        assert code == 0 or (code == 2 and f"{LOCKED} {other.pid}" in text), text
        assert "Traceback" not in text
    assert 0 in [code for code, _ in results]
    _assert_complete(out, Index.open(local_index))


def test_a_build_fails_at_once_or_waits_for_the_holder(corpus, local_index, tmp_path):
    out = tmp_path / "idx"
    with exclusive(out):  # another build (this test) holds --out
        code, text = _finish(_start("index", "build", str(corpus), "--out", str(out), "--local"))
        assert code == 2 and f"{LOCKED} {os.getpid()}" in text and "--wait" in text
        assert len(text.strip().splitlines()) == 1
        assert not out.exists()
        waiting = _start(
            "index", "build", str(corpus), "--out", str(out), "--local", "--wait", "300"
        )
        said = ""
        for line in waiting.stderr:  # it says whom it waits for (a wrapped log line), then waits
            said = " ".join((said + line).split())
            if "waiting up to 300 s" in said:
                break
        assert f"{LOCKED} {os.getpid()}" in said and "waiting up to 300 s" in said, said
    code, text = _finish(waiting)
    assert code == 0, text
    _assert_complete(out, Index.open(local_index))


def _gray_target(tmp_path: Path) -> Path:
    target = tmp_path / "old.png"
    Image.open(photo("leuven_a").path).convert("L").save(target)
    return target


def test_racing_first_use_auto_builds_the_default_index_once(tmp_path):
    target = _gray_target(tmp_path)
    env = {CACHE_ENV: str(tmp_path / "cache")}
    procs = [
        _start(
            "colorize",
            str(target),
            "--auto",
            "--top",
            "1",
            "-q",
            "--out",
            str(tmp_path / n),
            env=env,
        )
        for n in ("out1", "out2")
    ]
    results = [_finish(p) for p in procs]
    assert [code for code, _ in results] == [0, 0], results
    assert sum("first use" in text for _, text in results) == 1  # one built, one opened it
    for n in ("out1", "out2"):
        assert len(list((tmp_path / n).glob("old__auto1-*.png"))) == 1
    (built,) = (tmp_path / "cache" / "indexes").iterdir()  # no .building, no .lock left
    assert len(Index.open(built)) > 0


@pytest.fixture(scope="module")
def cached_default(tmp_path_factory) -> Path:
    """A cache folder holding a built default index (copied into each test's own cache)."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(cache))
        default_index()
    return cache


def _own_cache(cached_default: Path, tmp_path: Path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    shutil.copytree(cached_default, cache)
    monkeypatch.setenv(CACHE_ENV, str(cache))
    (built,) = (cache / "indexes").iterdir()
    return built


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _reseal(index_dir: Path, **changes: object) -> None:
    """Rewrite the manifest's checksums to match the disk, so only the deeper checks remain."""
    manifest = json.loads((index_dir / "manifest.json").read_text())
    manifest["files"] = {n: store.file_entry(index_dir / n) for n in store.SEARCH_FILES}
    (index_dir / "manifest.json").write_text(json.dumps({**manifest, **changes}))


def _corpus_moved(index_dir: Path) -> None:
    """As after moving the venv: the recorded corpus root is no longer the bundled photos'."""
    old = json.loads((index_dir / "manifest.json").read_text())["corpus"]
    _reseal(index_dir, corpus=old + "-moved")


def _row_changed(index_dir: Path) -> None:
    local = np.load(index_dir / "local.npy")
    local[-1] += np.float16(0.01)  # one row, still finite
    np.save(index_dir / "local.npy", local)
    _reseal(index_dir)


DAMAGE = {
    "corpus moved (resealed)": _corpus_moved,
    "a .npy row changed (resealed)": _row_changed,
    "rows.parquet truncated": lambda idx: _truncate(idx / "rows.parquet"),
    "manifest.json corrupt": lambda idx: (idx / "manifest.json").write_text('{"count": '),
    "manifest.json missing": lambda idx: (idx / "manifest.json").unlink(),
    "semantic.faiss truncated": lambda idx: _truncate(idx / "semantic.faiss"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_cached_default_index_is_rebuilt_once(
    cached_default, tmp_path, monkeypatch, caplog, damage
):
    built = _own_cache(cached_default, tmp_path, monkeypatch)
    healthy = Index.open(built).rows["id"]
    DAMAGE[damage](built)
    with caplog.at_level(logging.WARNING):
        index = default_index()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "rebuilding it" in warnings[0], warnings
    assert index.rows["id"] == healthy
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert default_index().rows["id"] == healthy
    assert not caplog.records  # rebuilt once: now it opens as it is


def test_colorize_auto_rebuilds_a_damaged_default_index(cached_default, tmp_path, monkeypatch):
    built = _own_cache(cached_default, tmp_path, monkeypatch)
    _truncate(built / "rows.parquet")
    target = _gray_target(tmp_path)
    code, text = _finish(
        _start(
            "colorize", str(target), "--auto", "--top", "1", "-q", "--out", str(tmp_path / "out")
        )
    )
    assert code == 0, text
    assert "cached default index cannot be used" in text and "rebuilding it" in text
    assert list((tmp_path / "out").glob("old__auto1-*.png"))


def test_a_damaged_cached_default_index_holding_a_foreign_file_is_not_deleted(
    cached_default, tmp_path, monkeypatch
):
    built = _own_cache(cached_default, tmp_path, monkeypatch)
    (built / "manifest.json").write_text('{"count": ')
    (built / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"holds notes\.txt, which chromaref did not write"):
        default_index()
    assert (built / "notes.txt").read_text() == "mine"


def test_a_failed_rebuild_is_one_clear_error(cached_default, tmp_path, monkeypatch):
    built = _own_cache(cached_default, tmp_path, monkeypatch)
    (built / "manifest.json").unlink()
    built.with_name(built.name + ".building").write_text("in the way")  # staging cannot be made
    with pytest.raises(ConfigError, match="could not build the default index") as caught:
        default_index()
    assert "\n" not in str(caught.value) and str(built) in str(caught.value)
