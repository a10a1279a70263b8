"""FAISS index over the global semantic vectors: cosine top-K that scales from 100 to 10^7 rows.

Why this layer exists: the right FAISS index depends on corpus size (exact Flat is fastest to
build and exact, but its search cost grows linearly; HNSW answers in ~log n but stores full
vectors; IVF-PQ compresses). The kind is picked from the size; the search parameters
(efSearch / nprobe) are raised at build time until recall@10 against exact search, measured on
corpus vectors held out of the index until then, reaches a target; both are saved with the
index, so speed and recall are known rather than guessed.

Vectors are L2-normalised float32, and the metric is the inner product, i.e. cosine similarity.
Corpora larger than memory are streamed: `build_vector_index` takes a factory of batch
iterators and reads it twice (training sample, then everything in bounded batches).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from chromaref.platform.errors import ConfigError, IndexFileError
from chromaref.platform.files import atomic_path

try:
    import faiss
except ImportError as exc:  # faiss-cpu and faiss-gpu are alternative extras
    raise ConfigError(
        "FAISS is not installed: `pip install 'chromaref[cpu]'` (or `[gpu]` on CUDA machines)"
    ) from exc

logger = logging.getLogger(__name__)

Batches = Callable[[], Iterator[np.ndarray]]

METRIC = "inner_product"
SIDECAR_FORMAT = 1
EVAL_K = 10  # recall@10 is what the tuning targets
MAX_TUNING_QUERIES = 1_000
EXACT_PAIR_BUDGET = 2_000_000_000  # query x corpus pairs for the exact ground truth
HNSW_EF_CONSTRUCTION = 40  # FAISS default; 80 bought no recall on clustered 1280-d data
MAX_EF_SEARCH = 4_096
START_K_FACTOR = 16  # IVF-PQ re-ranks k * k_factor PQ candidates with 8-bit scalar codes
MIN_POINTS_PER_CENTROID = 39  # below this FAISS k-means warns (and trains poorly)
DIMS_PER_PQ_CODE = 8
GPU_KINDS = frozenset({"flat", "ivfpq"})  # HNSW has no GPU version in FAISS
SEARCH_PARAMS = frozenset({"efSearch", "nprobe", "k_factor"})


class VectorIndexConfig(BaseModel):
    """Which FAISS index to build for the semantic vectors, and how hard to tune it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["auto", "flat", "hnsw", "ivfpq"] = "auto"
    flat_max: int = Field(50_000, ge=0, description="auto: exact Flat up to this many vectors")
    hnsw_max: int = Field(2_000_000, ge=0, description="auto: HNSW up to this many, IVF-PQ above")
    pca_dim: int | None = Field(
        None,
        ge=1,
        description="project to this many dims first (uncentred PCA, re-normalised); None = all",
    )
    hnsw_m: int = Field(32, ge=4, le=256, description="HNSW graph neighbours per node")
    ivf_lists: int | None = Field(
        None, ge=1, description="IVF cells; None = 4*sqrt(n), at most train_sample/39"
    )
    pq_m: int | None = Field(
        None,
        ge=1,
        description="PQ sub-quantizers (1 byte each), must divide the index dim; "
        "None = index_dim/8 (8 dims per code), or the largest divisor below it",
    )
    train_sample: int = Field(200_000, ge=1, description="first vectors used to train PCA/IVF/PQ")
    add_batch: int = Field(65_536, ge=1, description="vectors per add call (bounds memory)")
    target_recall: float = Field(
        0.95, gt=0, le=1, description="recall@10 vs exact search that search params must reach"
    )
    use_gpu: bool | None = Field(None, description="None = GPU when FAISS sees one")

    def resolve_kind(self, count: int) -> str:
        """The index kind for `count` vectors."""
        if self.kind != "auto":
            return self.kind
        if count <= self.flat_max:
            return "flat"
        return "hnsw" if count <= self.hnsw_max else "ivfpq"


@dataclass(frozen=True)
class VectorIndexReport:
    """What a build did; goes into the index manifest."""

    kind: str
    count: int
    dim: int
    index_dim: int
    metric: str
    build_seconds: float
    train_seconds: float
    search_params: dict[str, int]
    measured_recall_at_10: float | None
    gpu: bool
    bytes: int


class VectorIndex:
    """A built (or loaded) FAISS index with its tuned search parameters."""

    def __init__(
        self, index: faiss.Index, *, kind: str, search_params: dict[str, int], gpu: bool
    ) -> None:
        self._index = index
        self.kind = kind
        self.gpu = gpu
        self.search_params: dict[str, int] = {}
        self._use_params(search_params)

    @property
    def count(self) -> int:
        """Number of indexed vectors (row numbers run from 0 to count - 1)."""
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        """Dimension of the vectors the index takes (before any PCA)."""
        return int(self._index.d)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows per query: (q, k) float32 cosines and int64 row numbers.

        Rows are -1 (and scores -inf) where fewer than k results exist. A 1-D query is treated
        as one row. Scores are exact for Flat/HNSW and approximate after PCA or PQ.
        """
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        q = np.atleast_2d(np.asarray(queries))
        _check_batch(q, self.dim, "queries")
        q = _normalised(q)
        scores, ids = self._index.search(q, min(k, self.count))
        if ids.shape[1] < k:
            pad = k - ids.shape[1]
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, pad)))
        scores[ids < 0] = -np.inf
        return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)

    def nbytes(self) -> int:
        """Size of the serialised index (what `save` writes), counted without a copy."""
        written = 0

        def count(chunk: bytes) -> int:
            nonlocal written
            written += len(chunk)
            return len(chunk)

        faiss.write_index(self._cpu_index(), faiss.PyCallbackIOWriter(count))
        return written

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index and its `<name>.json` sidecar atomically (temp file, then rename)."""
        path = Path(path)
        sidecar = _sidecar_path(path)
        meta = {
            "format": SIDECAR_FORMAT,
            "kind": self.kind,
            "search_params": self.search_params,
            "count": self.count,
            "dim": self.dim,
            "metric": METRIC,
        }
        with atomic_path(sidecar) as sidecar_tmp, atomic_path(path) as index_tmp:
            faiss.write_index(self._cpu_index(), str(index_tmp))
            sidecar_tmp.write_text(json.dumps(meta, indent=2) + "\n")
        logger.info("saved %s index of %d vectors to %s", self.kind, self.count, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, use_gpu: bool | None = None) -> VectorIndex:
        """Read an index written by `save`; IndexFileError names the file when it cannot."""
        path = Path(path)
        if not path.is_file():
            raise IndexFileError(path, "vector index file not found; rebuild the index")
        meta = _read_sidecar(path)
        try:
            index = faiss.read_index(str(path))
        except (RuntimeError, MemoryError) as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise IndexFileError(
                path, f"not a readable FAISS index ({reason}); rebuild the index"
            ) from None
        if index.ntotal != meta["count"] or index.d != meta["dim"]:
            raise IndexFileError(
                path,
                f"holds {index.ntotal} vectors of dim {index.d} but its sidecar says "
                f"{meta['count']} of dim {meta['dim']}; rebuild the index",
            )
        gpu = _want_gpu(use_gpu) and meta["kind"] in GPU_KINDS
        if gpu:
            index, gpu = _to_gpu(index, meta["kind"])
        try:
            return cls(index, kind=meta["kind"], search_params=meta["search_params"], gpu=gpu)
        except RuntimeError:  # FAISS refuses a parameter this kind of index does not have
            raise IndexFileError(
                path, f"search parameters {meta['search_params']} do not fit a {meta['kind']} index"
            ) from None

    def _use_params(self, params: dict[str, int]) -> None:
        """Apply efSearch / nprobe / k_factor through FAISS's ParameterSpace (GPU-aware)."""
        space = faiss.GpuParameterSpace() if self.gpu else faiss.ParameterSpace()
        for name, value in params.items():
            faiss_name = "k_factor_rf" if name == "k_factor" else name
            space.set_index_parameter(self._index, faiss_name, value)
        self.search_params = {name: int(value) for name, value in params.items()}

    def _cpu_index(self) -> faiss.Index:
        return faiss.index_gpu_to_cpu(self._index) if self.gpu else self._index


def build_vector_index(
    vectors: np.ndarray | Batches,
    *,
    config: VectorIndexConfig | None = None,
    count: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[VectorIndex, VectorIndexReport]:
    """Build, fill and tune an index over (n, d) vectors or a factory of (b, d) batches.

    With a factory, `count` is required; the factory is called once for the training sample
    (the first `train_sample` vectors) and once to add everything. `progress` gets the number
    of vectors added so far after each batch.
    """
    config = config or VectorIndexConfig()
    source, count = _as_source(vectors, count, config.add_batch)
    kind = config.resolve_kind(count)
    start = time.perf_counter()

    approximate = kind != "flat" or config.pca_dim is not None
    sample_rows = min(count, config.train_sample)
    n_queries = _tuning_query_count(count, sample_rows) if approximate else 0
    query_rows = np.sort(np.random.default_rng(0).choice(sample_rows, n_queries, replace=False))
    keep_sample = kind == "ivfpq" or config.pca_dim is not None
    first_rows = sample_rows if keep_sample else int(query_rows[-1]) + 1 if n_queries else 1
    sample, queries, dim = _draw_sample(source, count, first_rows, query_rows, keep_sample)

    train_start = time.perf_counter()
    index_dim = _check_pca_dim(config.pca_dim, dim)
    pca = _train_pca(sample, index_dim) if index_dim != dim else None
    index = _make_index(kind, index_dim, count, len(sample), config, pca)
    if n_queries:  # the queries are held out until tuned, then added under their row numbers
        index = faiss.IndexIDMap(index)
    gpu = _want_gpu(config.use_gpu) and kind in GPU_KINDS
    if gpu:
        index, gpu = _to_gpu(index, kind)
    if not index.is_trained:
        index.train(sample)
    train_seconds = time.perf_counter() - train_start
    del sample

    truth = _add_all(index, source, count, dim, config.add_batch, queries, query_rows, progress)
    vector_index = VectorIndex(index, kind=kind, search_params={}, gpu=gpu)
    recall = None
    if truth is not None:
        lists = ivf_lists(count, sample_rows, config.ivf_lists) if kind == "ivfpq" else 0
        params, recall = _tune(vector_index, kind, queries, truth, config.target_recall, lists)
        vector_index._use_params(params)
        index.add_with_ids(queries, query_rows.astype(np.int64))
        if progress is not None:
            progress(count)
    report = VectorIndexReport(
        kind=kind,
        count=count,
        dim=dim,
        index_dim=index_dim,
        metric=METRIC,
        build_seconds=time.perf_counter() - start,
        train_seconds=train_seconds,
        search_params=dict(vector_index.search_params),
        measured_recall_at_10=recall,
        gpu=gpu,
        bytes=vector_index.nbytes(),
    )
    logger.info(
        "built %s index: %d x %d (index dim %d) in %.1f s, params %s, recall@10 %s",
        kind,
        count,
        dim,
        index_dim,
        report.build_seconds,
        report.search_params,
        "exact" if recall is None else f"{recall:.3f}",
    )
    return vector_index, report


# --- input -------------------------------------------------------------------------------------


def _as_source(vectors: np.ndarray | Batches, count: int | None, batch: int) -> tuple[Batches, int]:
    """A batch factory and the row count, for an array or a factory."""
    if callable(vectors):
        if count is None:
            raise ConfigError("count is required when vectors come from a batch factory")
        if count < 1:
            raise ConfigError(f"cannot build a vector index from {count} vectors")
        return vectors, count
    array = np.asarray(vectors)
    if array.ndim != 2:
        raise ConfigError(f"vectors must be a 2-D (n, d) array, got shape {array.shape}")
    if len(array) == 0 or array.shape[1] == 0:
        raise ConfigError(f"cannot build a vector index from an empty array {array.shape}")
    if count is not None and count != len(array):
        raise ConfigError(f"count={count} but the array holds {len(array)} vectors")
    return (lambda: (array[s : s + batch] for s in range(0, len(array), batch))), len(array)


def _check_batch(batch: np.ndarray, dim: int | None, where: str) -> None:
    """ConfigError unless `batch` is a finite, non-empty-width 2-D array of `dim` columns."""
    if batch.ndim != 2 or batch.shape[1] == 0:
        raise ConfigError(f"{where}: expected a 2-D (n, d) array, got shape {batch.shape}")
    if dim is not None and batch.shape[1] != dim:
        raise ConfigError(f"{where}: vectors have {batch.shape[1]} dims, expected {dim}")
    if not np.issubdtype(batch.dtype, np.number) or np.issubdtype(batch.dtype, np.complexfloating):
        raise ConfigError(f"{where}: vectors must be real numbers, got dtype {batch.dtype}")
    if not np.isfinite(batch).all():
        raise ConfigError(f"{where}: vectors contain NaN or infinite values")


def _normalised(batch: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 copy with unit rows (zero rows stay zero)."""
    out = np.array(batch, dtype=np.float32, order="C", copy=True)
    faiss.normalize_L2(out)
    return out


def _batches(
    source: Batches, count: int, dim: int | None, *, limit: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, checked batch) for the source's rows, stopping after `limit` rows.

    A full pass (no limit) must yield exactly `count` rows, all of one width.
    """
    done = 0
    for raw in source():
        batch = np.asarray(raw)
        _check_batch(batch, dim, f"batch at row {done}")
        dim = batch.shape[1]
        if done + len(batch) > count:
            raise ConfigError(f"the batches hold more than count={count} vectors")
        yield done, batch
        done += len(batch)
        if limit is not None and done >= limit:
            return
    if done != count and (limit is None or done < limit):
        raise ConfigError(f"the batches hold {done} vectors, count={count}")


def _draw_sample(
    source: Batches, count: int, rows: int, query_rows: np.ndarray, keep: bool
) -> tuple[np.ndarray, np.ndarray, int]:
    """First pass: the training sample (if `keep`), the tuning queries, and the dimension."""
    parts: list[np.ndarray] = []
    queries: list[np.ndarray] = []
    dim = 0
    for start, batch in _batches(source, count, None, limit=rows):
        dim = batch.shape[1]
        batch = batch[: rows - start]
        lo, hi = np.searchsorted(query_rows, [start, start + len(batch)])
        queries.append(_normalised(batch[query_rows[lo:hi] - start]))
        if keep:
            parts.append(_normalised(batch))
    sample = np.concatenate(parts) if parts else np.empty((0, dim), np.float32)
    return sample, np.concatenate(queries), dim


def _tuning_query_count(count: int, sample_rows: int) -> int:
    """Held-out tuning queries: at most 1000 and 10% of the rows.

    Fewer on huge corpora, where exact search over `count` rows is costly (a budget of 2e9
    query-row pairs, but at least 100 queries).
    """
    cap = max(100, EXACT_PAIR_BUDGET // count)
    return min(MAX_TUNING_QUERIES, sample_rows, count // 10, cap)


# --- construction ------------------------------------------------------------------------------


def _check_pca_dim(pca_dim: int | None, dim: int) -> int:
    """The dimension vectors are indexed at."""
    if pca_dim is None:
        return dim
    if pca_dim >= dim:
        raise ConfigError(f"pca_dim={pca_dim} must be smaller than the vector dimension {dim}")
    return pca_dim


def _train_pca(sample: np.ndarray, out_dim: int) -> faiss.PCAMatrix:
    """PCA of the uncentred second moment: the projection that best preserves inner products.

    Random sign flips make the sample's mean ~0, so FAISS's centred PCA sees E[x x^T]; the mean
    is then zeroed so the transform is a pure projection, and scores stay close to the true
    cosines (centring would shift them all). The index re-normalises the projected vectors:
    that keeps a vector its own best match, and on clustered data where PCA keeps little energy
    it measured recall@10 0.74 vs 0.42 (32 of 128 dims), at a cost of 1-3 points where PCA
    keeps most of it.
    """
    if len(sample) < out_dim:
        raise ConfigError(f"PCA to {out_dim} dims needs at least {out_dim} training vectors")
    signs = np.where(np.random.default_rng(0).random(len(sample)) < 0.5, -1, 1).astype(np.float32)
    sample *= signs[:, None]
    pca = faiss.PCAMatrix(sample.shape[1], out_dim)
    try:
        pca.train(sample)
    finally:
        sample *= signs[:, None]
    faiss.copy_array_to_vector(np.zeros(sample.shape[1], np.float32), pca.mean)
    pca.prepare_Ab()
    eigenvalues = faiss.vector_to_array(pca.eigenvalues)
    logger.info(
        "PCA %d -> %d keeps %.1f%% of the energy",
        sample.shape[1],
        out_dim,
        100 * eigenvalues[:out_dim].sum() / max(eigenvalues.sum(), 1e-12),
    )
    return pca


def default_pq_m(index_dim: int) -> int:
    """Sub-quantizers for PQ: index_dim/8 (8 dims per 1-byte code), or the next divisor down.

    8-dim sub-vectors cost index_dim/8 bytes a vector (1/32 of float32). 4-dim ones (dim/4
    bytes) trained far slower here (20k x 128: 6.3 s vs 0.4 s), and the 8-bit re-rank
    recovers the accuracy that coarser codes lose.
    """
    target = max(1, index_dim // DIMS_PER_PQ_CODE)
    return next(m for m in range(target, 0, -1) if index_dim % m == 0)


def _make_index(
    kind: str,
    index_dim: int,
    count: int,
    sample_rows: int,
    config: VectorIndexConfig,
    pca: faiss.PCAMatrix | None,
) -> faiss.Index:
    """The untrained FAISS index (PCA pre-transform -> optional re-rank -> core)."""
    ip = faiss.METRIC_INNER_PRODUCT
    if kind == "flat":
        index = faiss.IndexFlatIP(index_dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(index_dim, config.hnsw_m, ip)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    else:
        index = _make_ivfpq(index_dim, count, sample_rows, config)
    if pca is not None:
        index = faiss.IndexPreTransform(faiss.NormalizationTransform(index_dim), index)
        index.prepend_transform(pca)
    return index


def ivf_lists(count: int, sample_rows: int, wanted: int | None) -> int:
    """IVF cells: `wanted` or 4*sqrt(count), with at least 39 training vectors per cell."""
    lists = wanted or round(4 * math.sqrt(count))
    return max(1, min(lists, count, sample_rows // MIN_POINTS_PER_CENTROID or 1))


def _make_ivfpq(
    index_dim: int, count: int, sample_rows: int, config: VectorIndexConfig
) -> faiss.IndexRefine:
    """IVF-PQ whose candidates are re-ranked with 8-bit scalar codes (index_dim bytes a vector).

    PQ alone tops out well below 0.9 recall@10 on clustered data; the SQ8 re-rank brings the
    scores to within ~1e-3 of the exact cosine at a quarter of float32 memory.
    """
    ip = faiss.METRIC_INNER_PRODUCT
    lists = ivf_lists(count, sample_rows, config.ivf_lists)
    pq_m = config.pq_m or default_pq_m(index_dim)
    if index_dim % pq_m:
        raise ConfigError(f"pq_m={pq_m} must divide the index dimension {index_dim}")
    # 2^bits centroids per sub-quantizer, each with >= 39 training vectors (8 bits from 10k)
    bits = min(8, int(math.log2(max(sample_rows // MIN_POINTS_PER_CENTROID, 2))))
    quantizer = faiss.IndexFlatIP(index_dim)
    ivfpq = faiss.IndexIVFPQ(quantizer, index_dim, lists, pq_m, bits, ip)
    refine = faiss.IndexScalarQuantizer(index_dim, faiss.ScalarQuantizer.QT_8bit, ip)
    logger.info("IVF-PQ: %d lists, %d x %d-bit codes, SQ8 re-rank", lists, pq_m, bits)
    return faiss.IndexRefine(ivfpq, refine)


# --- GPU ---------------------------------------------------------------------------------------


def _want_gpu(use_gpu: bool | None) -> bool:
    """Whether to use the GPU: as asked, when FAISS can see one."""
    gpus = faiss.get_num_gpus()
    if use_gpu and gpus == 0:
        logger.warning("use_gpu=True but FAISS sees no GPU (faiss-cpu?); using the CPU")
    return bool(gpus > 0 and use_gpu is not False)


def _to_gpu(index: faiss.Index, kind: str) -> tuple[faiss.Index, bool]:
    """The index on all GPUs, or unchanged (with a warning) when FAISS cannot move it."""
    try:
        options = faiss.GpuMultipleClonerOptions()
        options.useFloat16 = kind == "ivfpq"  # float16 PQ lookup tables (large codes need them)
        return faiss.index_cpu_to_all_gpus(index, co=options), True
    except (RuntimeError, AttributeError) as exc:
        logger.warning("cannot put the %s index on the GPU (%s); using the CPU", kind, exc)
        return index, False


# --- filling and tuning ------------------------------------------------------------------------


def _add_all(
    index: faiss.Index,
    source: Batches,
    count: int,
    dim: int,
    add_batch: int,
    queries: np.ndarray,
    query_rows: np.ndarray,
    progress: Callable[[int], None] | None,
) -> np.ndarray | None:
    """Second pass: add every vector but the held-out queries, and find their exact top-k."""
    k = min(EVAL_K, count - len(queries))
    heap = faiss.ResultHeap(len(queries), k, keep_max=True) if len(queries) else None
    added = 0
    for start, batch in _batches(source, count, dim):
        for offset in range(start, start + len(batch), add_batch):
            chunk = _normalised(batch[offset - start : offset - start + add_batch])
            if heap is None:
                index.add(chunk)
            else:
                rows = np.arange(offset, offset + len(chunk))
                keep = ~np.isin(rows, query_rows, assume_unique=True)
                chunk, rows = chunk[keep], rows[keep]
                index.add_with_ids(chunk, rows)
                if len(chunk):
                    scores, found = faiss.knn(
                        queries, chunk, min(k, len(chunk)), metric=faiss.METRIC_INNER_PRODUCT
                    )
                    heap.add_result(scores, rows[found])
            added += len(chunk)
            if progress is not None:
                progress(added)
    if heap is None:
        return None
    heap.finalize()
    return heap.I


def _recall(index: VectorIndex, queries: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the exact top-k that the index returns."""
    _, ids = index.search(queries, truth.shape[1])
    hits = [len(np.intersect1d(a, b)) for a, b in zip(ids, truth, strict=True)]
    return float(np.mean(hits)) / truth.shape[1]


def _tune(
    index: VectorIndex,
    kind: str,
    queries: np.ndarray,
    truth: np.ndarray,
    target: float,
    lists: int,
) -> tuple[dict[str, int], float]:
    """Smallest search params whose measured recall@10 reaches `target`.

    efSearch / nprobe double until it does (efSearch then tries the midpoint below); IVF-PQ then
    halves its re-rank factor while the target still holds.
    """

    def measure(params: dict[str, int]) -> float:
        index._use_params(params)
        recall = _recall(index, queries, truth)
        logger.debug("%s %s: recall@%d %.4f", kind, params, truth.shape[1], recall)
        return recall

    if kind == "flat":  # exact apart from PCA: nothing to tune, only measure
        return {}, measure({})
    if kind == "hnsw":
        cap = min(MAX_EF_SEARCH, max(16, 1 << (index.count - 1).bit_length()))
        return _first_reaching(measure, "efSearch", _doubling(16, cap), {}, target, midpoint=True)
    fixed = {"k_factor": START_K_FACTOR}
    params, recall = _first_reaching(measure, "nprobe", _doubling(1, lists), fixed, target)
    for k_factor in _doubling(1, START_K_FACTOR // 2)[::-1]:
        lower = {**params, "k_factor": k_factor}
        lower_recall = measure(lower)
        if lower_recall < min(target, recall):
            break
        params, recall = lower, lower_recall
    return params, recall


def _doubling(first: int, last: int) -> list[int]:
    """first, 2*first, 4*first, ... and finally `last` itself."""
    values = [first]
    while values[-1] * 2 < last:
        values.append(values[-1] * 2)
    return [*values, last] if last > first else values


def _first_reaching(
    measure: Callable[[dict[str, int]], float],
    name: str,
    values: list[int],
    fixed: dict[str, int],
    target: float,
    *,
    midpoint: bool = False,
) -> tuple[dict[str, int], float]:
    """The first value of `name` whose recall reaches `target` (best seen if none does)."""
    best: tuple[dict[str, int], float] | None = None
    previous: int | None = None
    for value in values:
        params = {**fixed, name: value}
        recall = measure(params)
        if best is None or recall > best[1] + 1e-9:
            best = (params, recall)
        if recall >= target:
            if midpoint and previous is not None and previous >= 2:
                middle = {**fixed, name: previous + previous // 2}
                middle_recall = measure(middle)
                if middle_recall >= target:
                    return middle, middle_recall
            return params, recall
        previous = value
    assert best is not None
    logger.warning("recall@10 target %.3f not reached; best %.3f with %s", target, best[1], best[0])
    return best


# --- files -------------------------------------------------------------------------------------


def _sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _read_sidecar(path: Path) -> dict[str, Any]:
    """The sidecar's metadata; IndexFileError when it is missing, unreadable or incomplete."""
    sidecar = _sidecar_path(path)
    try:
        meta = json.loads(sidecar.read_text())
    except FileNotFoundError:
        raise IndexFileError(
            path, f"its metadata file {sidecar.name} is missing; rebuild the index"
        ) from None
    except (OSError, ValueError) as exc:
        raise IndexFileError(path, f"unreadable metadata file {sidecar.name}: {exc}") from None
    required = {"format", "kind", "search_params", "count", "dim"}
    if not isinstance(meta, dict) or not required <= meta.keys():
        raise IndexFileError(path, f"metadata file {sidecar.name} lacks {sorted(required)}")
    if meta["kind"] not in {"flat", "hnsw", "ivfpq"}:
        raise IndexFileError(
            path, f"metadata file {sidecar.name} names unknown kind {meta['kind']}"
        )
    if meta["format"] != SIDECAR_FORMAT:
        raise IndexFileError(
            path, f"metadata format {meta['format']}, this chromaref reads {SIDECAR_FORMAT}"
        )
    params = meta["search_params"]
    if not (
        type(meta["count"]) is int
        and type(meta["dim"]) is int
        and isinstance(params, dict)
        and set(params) <= SEARCH_PARAMS
        and all(type(v) is int and v > 0 for v in params.values())
    ):
        raise IndexFileError(
            path,
            f"metadata file {sidecar.name} has a malformed count, dim or "
            f"search_params (known: {sorted(SEARCH_PARAMS)})",
        )
    return meta
