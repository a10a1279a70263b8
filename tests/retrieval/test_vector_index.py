"""FAISS vector index: exactness, tuned recall, factory choice, memory maps, PCA, files, errors.

Recall is tested on clustered vectors (50 clusters, each spread along its own 8-d subspace),
because on uniformly random vectors every neighbour is about equally far and recall means nothing.
"""

from __future__ import annotations

import json
import re

import faiss
import numpy as np
import pytest

from chromaref.platform.errors import ConfigError
from chromaref.retrieval.npy_rows import NpyRows
from chromaref.retrieval.vector_index import (
    IndexFileError,
    IndexMeta,
    VectorIndex,
    VectorIndexConfig,
    build_vector_index,
)

DIM = 128


def clustered(n: int, *, seed: int = 0, clusters: int = 50) -> np.ndarray:
    """Unit vectors around `clusters` centres, each cluster varying in its own 8-d subspace."""
    rng = np.random.default_rng(seed)
    structure = np.random.default_rng(1234)  # same clusters for every seed
    centres = structure.standard_normal((clusters, DIM)).astype(np.float32)
    bases = structure.standard_normal((clusters, 8, DIM)).astype(np.float32) / np.sqrt(8)
    label = rng.integers(0, clusters, n)
    latent = rng.standard_normal((n, 8)).astype(np.float32)
    x = centres[label] + 0.35 * np.einsum("nr,nrd->nd", latent, bases[label])
    x += 0.05 * rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(corpus: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ corpus.T), axis=1, kind="stable")[:, :k]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(np.intersect1d(a, b)) / len(b) for a, b in zip(found, truth, strict=True)])
    )


@pytest.fixture(scope="module")
def corpus() -> np.ndarray:
    return clustered(20_000)


@pytest.fixture(scope="module")
def fresh_queries() -> np.ndarray:
    return clustered(200, seed=7)


def test_flat_returns_the_true_nearest_neighbours():
    vectors = clustered(3_000, seed=3) * 2.5  # not unit length: the index normalises
    queries = clustered(50, seed=4)
    index, report = build_vector_index(vectors)
    scores, ids = index.search(queries, 10)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    np.testing.assert_array_equal(ids, brute_force(unit, queries, 10))
    expected = np.take_along_axis(queries @ unit.T, ids, axis=1)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert (report.kind, report.factory, report.count, report.dim) == ("flat", "Flat", 3_000, DIM)
    assert report.measured_recall_at_10 is None and report.search_params == {}
    assert report.metric == "inner_product" and report.bytes > 3_000 * DIM * 4


@pytest.mark.parametrize(
    ("kind", "factory", "params"),
    [
        ("hnsw", "IDMap,HNSW32,Flat", {"efSearch"}),
        ("ivfpq", "IDMap,IVF512,PQ16x8np,Refine(SQ8)", {"nprobe", "k_factor_rf"}),
    ],
)
@pytest.mark.slow
def test_tuning_reaches_the_target_recall(corpus, fresh_queries, kind, factory, params):
    config = VectorIndexConfig(kind=kind, target_recall=0.95)
    index, report = build_vector_index(corpus, config=config)
    assert (report.kind, report.factory) == (kind, factory)
    assert set(report.search_params) == params and index.search_params == report.search_params
    assert report.measured_recall_at_10 is not None and report.measured_recall_at_10 >= 0.95
    # the measurement holds for queries the index has never seen
    _, ids = index.search(fresh_queries, 10)
    assert recall(ids, brute_force(corpus, fresh_queries, 10)) >= 0.92
    if kind == "ivfpq":
        assert report.bytes < corpus.nbytes / 2  # compressed: PQ codes + 8-bit re-rank codes


def test_a_higher_target_buys_recall_with_search_effort(corpus, fresh_queries):
    truth = brute_force(corpus, fresh_queries, 10)
    found = {}
    for target in (0.5, 0.995):  # efSearch below k=10 searches as 10: ~0.96 here
        config = VectorIndexConfig(kind="hnsw", target_recall=target)
        index, report = build_vector_index(corpus, config=config)
        assert report.measured_recall_at_10 >= target
        found[target] = (index.search_params, recall(index.search(fresh_queries, 10)[1], truth))
    assert found[0.5][0]["efSearch"] < found[0.995][0]["efSearch"]
    assert found[0.5][1] < found[0.995][1]


@pytest.mark.parametrize(
    ("n", "kind", "factory"),
    [
        (100, "flat", "Flat"),
        (400, "hnsw", "IDMap,HNSW32,Flat"),
        (2_000, "ivfpq", "IDMap,IVF51,PQ16x5np,Refine(SQ8)"),
    ],
)
@pytest.mark.slow
def test_auto_picks_the_factory_by_size(n, kind, factory):
    config = VectorIndexConfig(flat_max=100, hnsw_max=1_000)
    assert config.resolve_kind(n) == kind
    index, report = build_vector_index(clustered(n), config=config)
    assert (index.kind, report.kind, report.factory, index.count) == (kind, kind, factory, n)
    assert (report.measured_recall_at_10 is None) == (kind == "flat")


@pytest.mark.parametrize(
    ("read", "dtype"),
    [("memory-mapped", np.float64), ("streamed", np.float64), ("streamed", np.float32)],
)
def test_vectors_from_disk_give_the_same_index_as_an_array(tmp_path, read, dtype):
    vectors = 3 * clustered(5_000, seed=5)  # not unit rows: normalising in place would show
    original = vectors.copy()
    np.save(tmp_path / "v.npy", vectors.astype(dtype))
    if read == "streamed":
        mapped = NpyRows(tmp_path / "v.npy")
    else:
        mapped = np.load(tmp_path / "v.npy", mmap_mode="r")
    queries = clustered(20, seed=6)
    config = VectorIndexConfig(kind="flat", pca_dim=32, add_batch=512)  # trained and tuned
    from_disk, report = build_vector_index(mapped, config=config)
    in_memory, memory_report = build_vector_index(vectors, config=config)
    assert report.count == from_disk.count == 5_000
    assert report.measured_recall_at_10 == memory_report.measured_recall_at_10
    for a, b in zip(from_disk.search(queries, 10), in_memory.search(queries, 10), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(vectors, original)  # the caller's array is left as it was
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), original.astype(dtype))


def test_pca_reduces_the_index_dimension(corpus):
    config = VectorIndexConfig(kind="flat", pca_dim=32)
    index, report = build_vector_index(corpus[:5_000], config=config)
    assert (report.dim, report.index_dim, index.dim) == (DIM, 32, DIM)
    assert report.factory == "IDMap,PCA32,L2norm,Flat"
    assert report.bytes < 5_000 * DIM * 4 / 2
    assert report.measured_recall_at_10 is not None and report.measured_recall_at_10 > 0.5
    _, ids = index.search(corpus[:100], 1)
    assert (ids[:, 0] == np.arange(100)).mean() > 0.9  # a vector still finds itself


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
@pytest.mark.slow
def test_save_load_round_trip(tmp_path, kind):
    vectors, queries = clustered(2_000), clustered(30, seed=9)
    config = VectorIndexConfig(kind=kind, pca_dim=64 if kind == "hnsw" else None)
    index, _ = build_vector_index(vectors, config=config)
    path = tmp_path / "semantic.faiss"
    index.save(path)
    index.save(path)  # overwriting is atomic too
    loaded = VectorIndex.load(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["semantic.faiss", "semantic.faiss.json"]
    assert loaded.meta == index.meta and loaded.count == 2_000
    assert (
        IndexMeta.model_validate_json((tmp_path / "semantic.faiss.json").read_text()) == index.meta
    )
    for a, b in zip(loaded.search(queries, 10), index.search(queries, 10), strict=True):
        np.testing.assert_array_equal(a, b)


def test_damaged_or_old_files_raise_index_file_error(tmp_path):
    path, sidecar = tmp_path / "semantic.faiss", tmp_path / "semantic.faiss.json"
    named = re.escape(str(path))
    with pytest.raises(IndexFileError, match=named):
        VectorIndex.load(path)
    index, _ = build_vector_index(clustered(200), config=VectorIndexConfig(kind="hnsw"))
    index.save(path)
    data, meta = path.read_bytes(), json.loads(sidecar.read_text())
    path.write_bytes(data[:100])  # truncated
    with pytest.raises(IndexFileError, match=f"{named}: not a readable FAISS index"):
        VectorIndex.load(path)
    path.write_bytes(b"definitely not faiss" * 10)
    with pytest.raises(IndexFileError, match=named):
        VectorIndex.load(path)
    path.write_bytes(data)
    for damage, message in [
        ({"format": 1, "kind": "hnsw", "search_params": {"efSearch": 64}}, "not format-2 metadata"),
        ({**meta, "count": 201}, "holds 200 vectors"),
        ({**meta, "search_params": {"nprobe": 4}}, "do not fit"),
        ({**meta, "search_params": {"efSearch": True}}, "search_params.efSearch"),
    ]:
        sidecar.write_text(json.dumps(damage))
        with pytest.raises(IndexFileError, match=message):
            VectorIndex.load(path)
    sidecar.unlink()
    with pytest.raises(IndexFileError, match=r"semantic\.faiss\.json is missing"):
        VectorIndex.load(path)


def test_bad_input_raises_config_error():
    good = clustered(100)
    with pytest.raises(ConfigError, match="empty"):
        build_vector_index(np.empty((0, DIM), np.float32))
    with pytest.raises(ConfigError, match="2-D"):
        build_vector_index(good[0])
    bad = good.copy()
    bad[5, 3] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        build_vector_index(bad)
    with pytest.raises(ConfigError, match="real numbers"):
        build_vector_index(good.astype(np.complex64))
    with pytest.raises(ConfigError, match="pca_dim"):
        build_vector_index(good, config=VectorIndexConfig(pca_dim=DIM))
    with pytest.raises(ConfigError, match="pca_dim"):
        build_vector_index(good, config=VectorIndexConfig(pca_dim=64, train_sample=50))
    index, _ = build_vector_index(good)
    with pytest.raises(ConfigError, match="expected 128"):
        index.search(np.ones((1, 3), np.float32), 5)
    with pytest.raises(ConfigError, match="k must be"):
        index.search(good[:1], 0)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_k_larger_than_count_pads_with_minus_one(kind):
    vectors = clustered(12)
    index, _ = build_vector_index(vectors, config=VectorIndexConfig(kind=kind))
    scores, ids = index.search(vectors[:2], 20)
    assert ids.shape == scores.shape == (2, 20) and ids.dtype == np.int64
    assert scores.dtype == np.float32
    assert sorted(ids[0, :12]) == list(range(12)) and (ids[:, 12:] == -1).all()
    assert np.isneginf(scores[:, 12:]).all() and ids[0, 0] == 0


@pytest.mark.skipif(faiss.get_num_gpus() > 0, reason="needs a machine without a GPU")
def test_gpu_request_without_a_gpu_falls_back_to_the_cpu(caplog):
    index, report = build_vector_index(clustered(500), config=VectorIndexConfig(use_gpu=True))
    assert not report.gpu and not index.gpu
    assert "sees no GPU" in caplog.text


@pytest.mark.skipif(faiss.get_num_gpus() == 0, reason="needs a GPU that FAISS sees")
@pytest.mark.parametrize("kind", ["flat", "ivfpq"])
def test_gpu_build_and_search_match_the_cpu(tmp_path, corpus, fresh_queries, kind):
    config = VectorIndexConfig(kind=kind, use_gpu=True)
    index, report = build_vector_index(corpus, config=config)
    assert report.gpu and index.gpu
    _, ids = index.search(fresh_queries, 10)
    assert recall(ids, brute_force(corpus, fresh_queries, 10)) >= 0.92
    index.save(tmp_path / "gpu.faiss")
    cpu = VectorIndex.load(tmp_path / "gpu.faiss", use_gpu=False)
    assert not cpu.gpu and cpu.count == index.count and cpu.search_params == index.search_params


def test_fresh_batches_are_normalised_in_place_and_shared_ones_copied():
    from chromaref.retrieval.vector_index import _normalised

    fresh = (3 * clustered(10)).astype(np.float32)  # as read from a file: held by no one
    assert np.shares_memory(_normalised(fresh, "rows", owned=True), fresh)
    np.testing.assert_allclose(np.linalg.norm(fresh, axis=1), 1, rtol=1e-6)
    shared = 3 * clustered(10)
    before = shared.copy()
    assert not np.shares_memory(_normalised(shared, "rows"), shared)
    np.testing.assert_array_equal(shared, before)
