"""Index builds on a real Ray cluster: same result as in-process, survives a dead worker node
and a SIGKILLed build."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from chromaref.retrieval.build import BuildConfig, build_index
from chromaref.retrieval.index import Index

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster():
    """A 2-node local cluster: a small head and one worker node that tests may kill."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=2)
    ray.init(address=cluster.address, logging_level="WARNING")
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def _ids(path: Path) -> list[str]:
    return Index.open(path).rows["id"]


def test_ray_build_matches_in_process_build(cluster, corpus, local_index, tmp_path):
    report = build_index(corpus, tmp_path / "ray", config=BuildConfig(shard_size=4))
    assert report.count == len(_ids(local_index))
    assert _ids(tmp_path / "ray") == _ids(local_index)


def test_ray_workers_read_a_corpus_straight_from_s3(cluster, s3_corpus, local_index, tmp_path):
    report = build_index(s3_corpus("tree"), tmp_path / "s3", config=BuildConfig(shard_size=4))
    index, local = Index.open(tmp_path / "s3"), Index.open(local_index)
    assert report.count == len(local)
    assert all(uri.startswith("s3://") for uri in index.rows["uri"])
    assert sorted(index.rows["sha1"]) == sorted(local.rows["sha1"])  # the same bytes


def test_build_survives_losing_a_worker_node(cluster, corpus, local_index, tmp_path):
    worker = next(n for n in cluster.list_all_nodes() if n is not cluster.head_node)
    staging = tmp_path / "killed.building"
    shards_logged_at_kill = []

    def kill_after_first_shard():
        deadline = time.time() + 120
        while time.time() < deadline:
            log = staging / "progress.jsonl"
            if log.exists() and log.read_text().strip():
                cluster.remove_node(worker)
                shards_logged_at_kill.append(log.read_text().count("\n"))
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_after_first_shard, daemon=True)
    killer.start()
    config = BuildConfig(shard_size=2, batch_size=2, decode_batch_size=2)
    report = build_index(corpus, tmp_path / "killed", config=config)
    killer.join(timeout=5)
    assert shards_logged_at_kill and shards_logged_at_kill[0] < report.shards, (
        "the worker node was not killed mid-build",
        shards_logged_at_kill,
    )
    ids = _ids(tmp_path / "killed")
    assert ids == _ids(local_index)  # every image exactly once, in corpus order
    assert len(set(ids)) == len(ids)
    cluster.add_node(num_cpus=2)


def test_sigkilled_build_keeps_old_index_and_resumes(corpus, local_index, tmp_path):
    import shutil

    out = tmp_path / "idx"
    shutil.copytree(local_index, out)  # a previous, usable index
    code = (
        "import sys; from chromaref.retrieval.build import BuildConfig, build_index;"
        "build_index(sys.argv[1], sys.argv[2], config=BuildConfig(runner='local', shard_size=2,"
        " batch_size=2))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(corpus), str(out)])
    log = tmp_path / "idx.building" / "progress.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and log.read_text().count("\n") >= 2):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = log.read_text().count("\n")
    total = json.loads((out / "manifest.json").read_text())
    assert done_before >= 2, "the build was not interrupted mid-way"
    assert len(Index.open(out)) == total["count"]  # the old index still opens and works
    report = build_index(
        corpus, out, config=BuildConfig(runner="local", shard_size=2, batch_size=2)
    )
    assert report.shards_resumed >= 2
    assert _ids(out) == _ids(local_index)
    assert not (tmp_path / "idx.building").exists()
