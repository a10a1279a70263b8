"""Corpora on an object store: a real S3 API (moto's server over HTTP on 127.0.0.1)."""

from __future__ import annotations

import numpy as np
import pytest

from chromaref.platform.errors import ConfigError, ImageLoadError
from chromaref.platform.images import load_image
from chromaref.retrieval.build import BuildConfig, build_index
from chromaref.retrieval.corpus import list_corpus, read_bytes
from chromaref.retrieval.index import Index

pytestmark = pytest.mark.slow


def test_s3_folder_tree_lists_like_the_local_one(corpus, s3_corpus):
    local, remote = list_corpus(corpus), list_corpus(s3_corpus("tree"))
    assert [(i.label, i.uri.rsplit("/", 1)[-1].split("?")[0]) for i in remote] == [
        (i.label, i.uri.rsplit("/", 1)[-1]) for i in local
    ]
    assert list_corpus(s3_corpus("tree")) == remote  # stable ids: a rerun resumes
    first = sorted(corpus.rglob("*.jpg"))[0]
    match = next(i for i in remote if i.uri.split("?")[0].endswith(first.name))
    assert read_bytes(match.uri) == first.read_bytes()


@pytest.mark.parametrize("layout", ["tree", "parquet", "tar"])
def test_index_built_from_s3_matches_the_local_index(
    layout, corpus, s3_corpus, local_index, tmp_path
):
    out = tmp_path / "index"
    report = build_index(s3_corpus(layout), out, config=BuildConfig(runner="local"))
    local = Index.open(local_index)
    assert report.count == len(local)
    index = Index.open(out, trust=True)  # its uris carry endpoint_override: our own index
    assert sorted(index.rows["label"]) == sorted(local.rows["label"])
    photo = load_image(sorted(corpus.glob("food/*.jpg"))[0]).rgb
    hit = index.search(photo, 1)[0]
    assert np.array_equal(index.load_reference(hit), photo)  # found itself, read back from S3
    with pytest.raises(ImageLoadError, match=r"endpoint_override.*trust"):
        Index.open(out).load_reference(hit)  # an index does not choose the endpoint by itself


def test_missing_bucket_key_and_unknown_scheme_are_clear_errors(s3_corpus):
    with pytest.raises(ConfigError, match="does not exist"):
        list_corpus(s3_corpus("no/such/prefix"))
    with pytest.raises(ConfigError, match="cannot open"):
        list_corpus("nosuchfs://bucket/corpus")


def test_colorize_auto_reads_an_object_store_index_only_with_trust_index(
    corpus, s3_corpus, tmp_path
):
    from typer.testing import CliRunner

    from chromaref.cli.main import app

    index = tmp_path / "index"
    build_index(s3_corpus("tree"), index, config=BuildConfig(runner="local"))
    target = sorted(corpus.glob("food/*.jpg"))[0]
    args = ["colorize", str(target), "--auto", "--top", "1", "--index", str(index), "-q"]
    refused = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "refused")])
    assert refused.exit_code == 2 and "--trust-index" in refused.output
    trusted = CliRunner().invoke(app, [*args, "--trust-index", "--out", str(tmp_path / "ok")])
    assert trusted.exit_code == 0, trusted.output
    assert len(list((tmp_path / "ok").glob("*__auto1-*.png"))) == 1
