"""Index build in-process (no Ray) and search: the contract every runner must keep."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chromaref.platform.errors import ConfigError, IndexMismatchError
from chromaref.platform.images import load_image
from chromaref.retrieval.build import BuildConfig, build_index
from chromaref.retrieval.corpus import list_corpus
from chromaref.retrieval.index import Index
from chromaref.retrieval.ranking import RankingConfig


def test_manifest_counts_and_skips_with_reasons(corpus, local_index):
    manifest = json.loads((local_index / "manifest.json").read_text())
    listed = list_corpus(corpus)
    assert manifest["count"] == len(listed) - 3
    reasons = {uri.split("/")[-1]: reason for uri, reason in manifest["skipped"]}
    assert "gray" in reasons["gray.png"]
    assert "not a recognised image format" in reasons["corrupt.jpg"]
    assert next(r for n, r in reasons.items() if n.startswith("copy_of_")).startswith("duplicate")
    assert manifest["model_id"].startswith("efficientnet_lite0@")
    assert len(manifest["shards"]) == -(-len(listed) // 4)
    assert all(len(s["sha256"]) == 64 for s in manifest["shards"])
    assert not (local_index.parent / "local.building").exists()


@pytest.mark.slow
def test_gray_query_finds_its_own_color_photo(corpus, local_index):
    index = Index.open(local_index)
    for path in sorted(corpus.glob("*/*.jpg"))[:6]:
        if path.name.startswith("copy_of_") or path.name == "corrupt.jpg":
            continue
        gray = np.asarray(load_image(path).rgb.mean(axis=2, keepdims=True).repeat(3, 2), np.uint8)
        hits = index.search(gray, 3)
        assert hits[0].uri == str(path.resolve()), (path, [h.uri for h in hits])
        assert hits[0].score >= hits[1].score
        assert hits[0].label == path.parent.name


@pytest.mark.slow
def test_exclusion_and_stage_ablation(corpus, local_index):
    index = Index.open(local_index)
    path = sorted((corpus / "food").glob("*.jpg"))[0]
    rgb = load_image(path).rgb
    top = index.search(rgb, 1)[0]
    others = index.search(rgb, 3, exclude_ids=frozenset({top.id}))
    assert top.id not in {h.id for h in others}
    semantic_only = index.search(rgb, 3, ranking=RankingConfig(stages=("semantic",)))
    assert semantic_only[0].luminance is None and semantic_only[0].local is None
    luminance_only = index.search(rgb, 3, ranking=RankingConfig(stages=("luminance",)))
    assert luminance_only[0].id == top.id


@pytest.mark.slow
def test_rebuild_is_identical_and_replaces_atomically(corpus, local_index, tmp_path):
    out = tmp_path / "again"
    build_index(corpus, out, config=BuildConfig(runner="local", shard_size=4))
    first = Index.open(local_index).rows
    second = Index.open(out).rows
    assert first["id"] == second["id"]
    np.testing.assert_array_equal(
        np.load(local_index / "semantic.npy"), np.load(out / "semantic.npy")
    )
    report = build_index(corpus, out, config=BuildConfig(runner="local", shard_size=4))
    assert report.count == len(first["id"])
    assert [p.name for p in tmp_path.iterdir()] == ["again"]


def test_empty_and_missing_corpus(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no images"):
        build_index(tmp_path / "empty", tmp_path / "idx", config=BuildConfig(runner="local"))
    with pytest.raises(ConfigError, match="does not exist"):
        build_index(tmp_path / "nope", tmp_path / "idx", config=BuildConfig(runner="local"))
    only_gray = tmp_path / "gray"
    only_gray.mkdir()
    from PIL import Image

    Image.new("L", (64, 64), 128).save(only_gray / "g.png")
    (only_gray / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(ConfigError, match="no usable reference") as refused:
        build_index(only_gray, tmp_path / "idx", config=BuildConfig(runner="local"))
    assert not (tmp_path / "idx").exists()
    message = str(refused.value)  # each file's reason, and where the work so far is kept
    assert "broken.jpg: " in message and "g.png: " in message and "idx.building" in message


def test_open_refuses_a_mismatched_model(local_index, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(local_index, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["model_id"] = "efficientnet_lite0@0000000000000000/other"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="rebuild"):
        Index.open(copy)
    with pytest.raises(ConfigError, match="not a chromaref index"):
        Index.open(tmp_path)


@pytest.mark.slow
def test_parquet_and_tar_corpora_index_the_same_images(corpus, local_index, tmp_path):
    import tarfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(p for p in corpus.rglob("*.jpg") if p.name != "corrupt.jpg")
    pq.write_table(
        pa.table(
            {"image": [p.read_bytes() for p in files], "label": [p.parent.name for p in files]}
        ),
        tmp_path / "corpus.parquet",
    )
    with tarfile.open(tmp_path / "corpus.tar", "w") as archive:
        for p in files:
            archive.add(p, arcname=f"{p.parent.name}/{p.name}")
    expected = len(Index.open(local_index))
    for source in ("corpus.parquet", "corpus.tar"):
        out = tmp_path / f"idx-{source}"
        report = build_index(tmp_path / source, out, config=BuildConfig(runner="local"))
        assert report.count == expected, source
        labels = set(Index.open(out).rows["label"])
        assert labels == {"animal", "food", "building", "nature"}


def test_never_replaces_a_folder_that_is_not_an_index(corpus, tmp_path):
    precious = tmp_path / "photos"
    precious.mkdir()
    (precious / "wedding.jpg").write_bytes(b"irreplaceable")
    with pytest.raises(ConfigError, match="not a chromaref index"):
        build_index(corpus, precious, config=BuildConfig(runner="local"))
    assert (precious / "wedding.jpg").read_bytes() == b"irreplaceable"


@pytest.mark.slow
def test_in_process_build_leaves_the_callers_torch_threads_alone(corpus, tmp_path):
    import torch

    torch.set_num_threads(2)
    build_index(corpus, tmp_path / "index", config=BuildConfig(runner="local"))
    assert torch.get_num_threads() == 2  # `chromaref eval` colorizes right after a build
