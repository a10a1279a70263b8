"""The application serving an index published to an object store (moto's S3 server on
127.0.0.1): the Retriever replica fetches it from the store itself."""

from __future__ import annotations

import json
import os
import shutil

import pyarrow.parquet as pq
import pytest
import requests
from s3server import s3_server
from served import BASE_SETTINGS, deploy, gray_png

from chromaref.retrieval.remote_index import publish
from chromaref.retrieval.storage import CACHE_ENV, locate

pytestmark = [pytest.mark.ray, pytest.mark.integration, pytest.mark.slow]
TIMEOUT = 120


@pytest.fixture(scope="module")
def s3():
    with s3_server("indexes") as server:
        yield server


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The cache folder of this module's processes, Ray's workers included (set before the
    `serve_instance` fixture starts Ray)."""
    cache = tmp_path_factory.mktemp("serve_cache")
    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(cache)
    yield cache
    if old is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = old


@pytest.fixture(scope="module")
def store_app(s3, cache, serve_instance, local_index, tmp_path_factory):
    uri = s3.uri("indexes/served")
    copy = tmp_path_factory.mktemp("published") / "index"
    shutil.copytree(local_index, copy)
    publish(copy, locate(uri))
    shutil.rmtree(cache / "indexes")  # publishing cached it here: the replica must download it
    return deploy(serve_instance, "store", {**BASE_SETTINGS, "index": uri})


def test_an_index_in_the_store_is_served(store_app, cache, local_index, photo_rgb):
    ready = requests.get(store_app.url + "readyz", timeout=TIMEOUT)
    count = json.loads((local_index / "manifest.json").read_text())["count"]
    assert ready.status_code == 200 and ready.json()["references"] == count
    [fetched] = (cache / "indexes").glob("remote-*")  # by the Retriever replica
    assert (fetched / "manifest.json").read_bytes() == (local_index / "manifest.json").read_bytes()

    target = gray_png(photo_rgb("coffee"))
    response = requests.post(
        store_app.url + "v1/colorize",
        files=[("image", ("c.png", target))],
        data={"top": 1},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    ids = pq.read_table(local_index / "rows.parquet", columns=["id"])["id"].to_pylist()
    assert result["reference"]["id"] in ids and result["reference"]["score"] is not None
    assert result["image"]
