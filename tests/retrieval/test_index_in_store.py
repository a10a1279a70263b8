"""An index built into, and opened from, an object store (moto's S3 server on 127.0.0.1)."""

from __future__ import annotations

import os
import shutil

import pytest
from s3server import s3_server

from chromaref.platform.errors import ConfigError
from chromaref.platform.images import load_image
from chromaref.retrieval import store
from chromaref.retrieval.build import BuildConfig, build_index
from chromaref.retrieval.default import CACHE_ENV, open_index
from chromaref.retrieval.index import Index
from chromaref.retrieval.remote_index import publish
from chromaref.retrieval.storage import locate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3():
    with s3_server("indexes") as server:
        yield server


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _hits(index: Index, photo) -> list[tuple[str, float]]:
    return [(hit.id, round(hit.score, 5)) for hit in index.search(photo, 4)]


def test_built_into_s3_then_opened_from_it_like_the_local_index(s3, corpus, local_index, cache):
    uri = s3.uri("indexes/photos")
    report = build_index(corpus, uri, config=BuildConfig(runner="local", shard_size=4))
    assert report.index_dir == uri
    keys = s3.keys("indexes/photos")
    assert {store.MANIFEST, *store.SEARCH_FILES} <= set(keys)
    assert [k for k in keys if k.startswith("shards/")] == [s["file"] for s in _manifest(s3)]
    shutil.rmtree(cache)  # the build leaves its copy in the cache: make opening download it

    local = Index.open(local_index)
    remote = open_index(uri)
    assert remote.path.parent == cache / "indexes" and remote.path.name.startswith("remote-")
    assert not (remote.path / "shards").exists()  # a search needs no shard
    assert len(remote) == len(local) == report.count
    photo = load_image(sorted(corpus.glob("food/*.jpg"))[0]).rgb
    assert _hits(remote, photo) == _hits(local, photo)
    first = (remote.path / store.ROWS).stat().st_mtime_ns
    again = Index.open(uri)  # the same published version: the cached copy, not a download
    assert again.path == remote.path and (again.path / store.ROWS).stat().st_mtime_ns == first


def _manifest(s3) -> list[dict]:
    import json

    with s3.fs.open_input_stream(f"indexes/photos/{store.MANIFEST}") as f:
        return json.loads(f.read())["shards"]


def test_an_upload_cut_short_leaves_no_index(s3, local_index, tmp_path, cache):
    """The manifest goes last: a republish that fails midway leaves no manifest, and readers
    are told there is no index there, not handed half of one."""
    dest = locate(s3.uri("indexes/cut"))
    good = tmp_path / "good"
    shutil.copytree(local_index, good)
    publish(good, dest)
    assert Index.open(str(dest)).manifest["count"] > 0

    broken = tmp_path / "broken"
    shutil.copytree(local_index, broken)
    (broken / "semantic.npy").unlink()
    os.symlink("/proc/self/mem", broken / "semantic.npy")  # a file whose read fails (EIO)
    with pytest.raises(ConfigError, match=r"no manifest\.json there.*rerun the build"):
        publish(broken, dest)
    uploaded = s3.keys("indexes/cut")
    assert store.MANIFEST not in uploaded and store.ROWS in uploaded  # cut after some files
    with pytest.raises(ConfigError) as refused:
        Index.open(str(dest))
    message = str(refused.value)
    assert "not a chromaref index: no manifest.json" in message and "\n" not in message


def test_a_prefix_holding_other_objects_is_not_overwritten(s3, local_index, tmp_path, cache):
    with s3.fs.open_output_stream("indexes/mixed/notes.txt") as out:
        out.write(b"someone else's file")
    copy = tmp_path / "copy"
    shutil.copytree(local_index, copy)
    with pytest.raises(ConfigError, match=r"notes\.txt, which an index build did not write"):
        publish(copy, locate(s3.uri("indexes/mixed")))
    assert s3.keys("indexes/mixed") == ["notes.txt"]


def test_cli_builds_into_the_store_and_colorizes_from_it(s3, corpus, tmp_path, cache):
    from typer.testing import CliRunner

    from chromaref.cli.main import app

    uri = s3.uri("indexes/cli")
    built = CliRunner().invoke(app, ["index", "build", str(corpus), "--out", uri, "--local", "-q"])
    assert built.exit_code == 0, built.output
    assert store.MANIFEST in s3.keys("indexes/cli")
    shutil.rmtree(cache)
    target = sorted(corpus.glob("food/*.jpg"))[0]
    args = ["colorize", str(target), "--auto", "--top", "1", "--index", uri, "-q"]
    done = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    assert len(list((tmp_path / "out").glob("*__auto1-*.png"))) == 1
    assert list((cache / "indexes").glob("remote-*"))  # fetched from the store


def _republished(local_index, folder, when: str):
    """A copy of `local_index` as a rebuild would publish it: same files, a new created time."""
    import json

    shutil.copytree(local_index, folder)
    manifest = json.loads((folder / store.MANIFEST).read_text())
    (folder / store.MANIFEST).write_text(json.dumps({**manifest, "created": when}))
    return folder


def test_the_cache_keeps_the_newest_copies_of_a_republished_index(s3, local_index, tmp_path, cache):
    """A replica that follows an index republished again and again keeps two copies of it (the
    newest and the one a running search may still read), never one per version; the copies
    of another URI are not touched."""
    from chromaref.retrieval.remote_index import KEEP_VERSIONS

    other_copy = _republished(local_index, tmp_path / "other", "2025-12-31")
    other = Index.open(_publish(s3, "indexes/other", other_copy))
    opened = []
    for version in range(4):
        folder = _republished(local_index, tmp_path / f"v{version}", f"2026-01-0{version + 1}")
        uri = _publish(s3, "indexes/rolling", folder)
        shutil.rmtree(Index.open(uri).path)  # publishing cached it: make opening download it
        opened.append(Index.open(uri).path)
        assert len(set(opened)) == version + 1  # each version is its own copy
    kept = sorted(p for p in (cache / "indexes").glob("remote-*"))
    assert kept == sorted([*opened[-KEEP_VERSIONS:], other.path])
    assert len(Index.open(uri)) == len(other)  # the newest copy still opens


def _publish(s3, key: str, folder) -> str:
    uri = s3.uri(key)
    publish(folder, locate(uri))
    return uri
