"""FAISS index over the global semantic vectors: cosine top-K that scales from 100 to 10^7 rows.

`faiss.index_factory` builds the index from a string chosen by corpus size: exact `Flat` (its
search cost grows linearly), `HNSW32,Flat` (~log n search, full vectors) or
`IVF…,PQ…,Refine(SQ8)` (compressed). FAISS's `ParameterSpace.explore` then times its search
settings (efSearch, nprobe, k_factor_rf) and measures their recall@10 against exact search on
corpus vectors held out of the index until then; the fastest one reaching the target is kept.
The factory string, metric and settings are saved with the index, so speed and recall are
known rather than guessed.

Vectors are L2-normalised float32 and the metric is the inner product (cosine similarity).
The input is read in `add_batch` slices, so corpora larger than memory can be indexed from a
memory-mapped array or, without the map's pages piling up in the resident set, from
`npy_rows.NpyRows`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, ValidationError

from chromaref.platform.errors import ConfigError, IndexFileError
from chromaref.platform.files import atomic_path
from chromaref.retrieval.npy_rows import NpyRows

try:
    import faiss
except ImportError as exc:  # faiss-cpu and faiss-gpu are alternative extras
    raise ConfigError(
        "FAISS is not installed: `pip install 'chromaref[cpu]'` (or `[gpu]` on CUDA machines)"
    ) from exc

logger = logging.getLogger(__name__)

METRIC = "inner_product"
SIDECAR_FORMAT = 2  # 1 was chromaref's hand-built indexes and parameter names: rebuild those
EVAL_K = 10  # recall@10 is what the tuning targets
MAX_TUNING_QUERIES = 1_000
EXACT_PAIRS = 2_000_000_000  # budget of query x corpus pairs for the exact ground truth
MIN_POINTS_PER_CENTROID = 39  # below this FAISS k-means warns (and trains poorly)
GPU_KINDS = frozenset({"flat", "ivfpq"})  # HNSW has no GPU version in FAISS


class VectorIndexConfig(BaseModel):
    """Which FAISS index to build for the semantic vectors, and how hard to tune it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["auto", "flat", "hnsw", "ivfpq"] = "auto"
    flat_max: int = Field(50_000, ge=0, description="auto: exact Flat up to this many vectors")
    hnsw_max: int = Field(2_000_000, ge=0, description="auto: HNSW up to this many, IVF-PQ above")
    pca_dim: int | None = Field(
        None, ge=1, description="project to this many dims first (uncentred PCA); None = all"
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
    factory: str
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


class IndexMeta(BaseModel):
    """The `<index>.json` sidecar: what the FAISS file must hold and how to search it."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    format: Literal[2] = SIDECAR_FORMAT
    kind: Literal["flat", "hnsw", "ivfpq"]
    factory: str
    metric: Literal["inner_product"] = METRIC
    search_params: dict[str, PositiveInt]
    count: NonNegativeInt
    dim: PositiveInt


class VectorIndex:
    """A built (or loaded) FAISS index with its tuned search parameters."""

    def __init__(self, index: faiss.Index, meta: IndexMeta, *, gpu: bool) -> None:
        self._index, self.meta, self.gpu = index, meta, gpu
        self.kind, self.factory, self.search_params = meta.kind, meta.factory, meta.search_params
        for name, value in meta.search_params.items():
            _parameter_space().set_index_parameter(index, name, value)

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
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ConfigError(f"queries: expected {self.dim} dims, got shape {q.shape}")
        scores, ids = self._index.search(_normalised(q, "queries"), k)
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
        with atomic_path(_sidecar_path(path)) as sidecar_tmp, atomic_path(path) as index_tmp:
            faiss.write_index(self._cpu_index(), str(index_tmp))
            sidecar_tmp.write_text(self.meta.model_dump_json(indent=2) + "\n")
        logger.info("saved %s index of %d vectors to %s", self.factory, self.count, path)

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
                path, f"not a readable FAISS index ({reason}); rebuild it"
            ) from None
        expected = (meta.count, meta.dim, faiss.METRIC_INNER_PRODUCT)
        if (index.ntotal, index.d, index.metric_type) != expected:
            raise IndexFileError(
                path,
                f"holds {index.ntotal} vectors of dim {index.d} (metric {index.metric_type}), "
                f"its sidecar says {meta.count} of dim {meta.dim} ({METRIC}); rebuild it",
            )
        index, gpu = _on_gpu(index, meta.kind, use_gpu)
        try:
            return cls(index, meta, gpu=gpu)
        except RuntimeError:  # FAISS refuses a parameter this index does not have
            raise IndexFileError(
                path, f"search parameters {meta.search_params} do not fit {meta.factory}"
            ) from None

    def _cpu_index(self) -> faiss.Index:
        return faiss.index_gpu_to_cpu(self._index) if self.gpu else self._index


def build_vector_index(
    vectors: np.ndarray | NpyRows, *, config: VectorIndexConfig | None = None
) -> tuple[VectorIndex, VectorIndexReport]:
    """Build, fill and tune an index over (n, d) vectors: an array (in memory or memory-mapped)
    or rows streamed from a .npy file.

    Training uses the first `train_sample` vectors; vectors are read `add_batch` at a time.
    """
    config = config or VectorIndexConfig()
    vectors = vectors if isinstance(vectors, NpyRows) else np.asarray(vectors)
    if vectors.ndim != 2 or 0 in vectors.shape:
        raise ConfigError(f"vectors must be a non-empty 2-D (n, d) array, got {vectors.shape}")
    (count, dim), start = vectors.shape, time.perf_counter()
    kind, index_dim = config.resolve_kind(count), config.pca_dim or dim
    sample_rows = min(count, config.train_sample)
    if config.pca_dim is not None and not config.pca_dim < min(dim, sample_rows + 1):
        raise ConfigError(f"pca_dim={index_dim} must be below {dim} dims and {sample_rows} rows")

    # held-out tuning queries: <= 1000 and 10% of the rows, fewer where exact search is costly
    n_queries = min(MAX_TUNING_QUERIES, sample_rows, count // 10, max(100, EXACT_PAIRS // count))
    n_queries = n_queries if kind != "flat" or index_dim < dim else 0
    query_rows = np.sort(np.random.default_rng(0).choice(sample_rows, n_queries, replace=False))
    core = factory_string(kind, dim, index_dim, count, sample_rows)
    factory = f"IDMap,{core}" if n_queries else core  # IDMap: held-out queries join last
    index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    space = _search_space(faiss.downcast_index(index.index)) if n_queries else None
    streamed = isinstance(vectors, NpyRows)  # its reads are fresh arrays: normalised in place
    sample = (
        None
        if index.is_trained
        else _normalised(vectors[:sample_rows], "training sample", owned=streamed)
    )
    if index_dim < dim:
        _train_uncentred_pca(index, sample)
    index, gpu = _on_gpu(index, kind, config.use_gpu)
    if sample is not None:
        index.train(sample)
    train_seconds = time.perf_counter() - start
    del sample

    queries = _normalised(vectors[query_rows], "tuning queries", owned=True)  # a fancy-index copy
    truth = _add_all(index, vectors, config.add_batch, query_rows, queries)
    params, recall = {}, None
    if space is not None:
        params, recall = _tune(index, space, queries, truth, config.target_recall)
        index.add_with_ids(queries, query_rows.astype(np.int64))
    meta = IndexMeta(kind=kind, factory=factory, search_params=params, count=count, dim=dim)
    vector_index = VectorIndex(index, meta, gpu=gpu)
    report = VectorIndexReport(
        **meta.model_dump(exclude={"format"}),
        index_dim=index_dim,
        build_seconds=time.perf_counter() - start,
        train_seconds=train_seconds,
        measured_recall_at_10=recall,
        gpu=gpu,
        bytes=vector_index.nbytes(),
    )
    outcome = "exact" if recall is None else f"{params}, recall@10 {recall:.3f}"
    logger.info(
        "built %s over %d x %d in %.1f s: %s", factory, count, dim, report.build_seconds, outcome
    )
    return vector_index, report


def factory_string(kind: str, dim: int, index_dim: int, count: int, sample_rows: int) -> str:
    """The `faiss.index_factory` description of a `kind` index (without IDMap).

    PCA is followed by re-normalisation: that keeps a vector its own best match, and on
    clustered data where PCA keeps little energy it measured recall@10 0.74 vs 0.42 (32 of 128
    dims). IVF: 4*sqrt(n) cells. PQ: 8 dims per code (4 trained 15x slower), up to 8 bits, `np`
    (FAISS's polysemous training took 9x the build time at 20k vectors, for a search mode not
    used). Both keep >= 39 training vectors per centroid. PQ alone stays well below 0.9
    recall@10 on clustered data; the SQ8 re-rank brings scores to within ~1e-3 of the cosine.
    """
    prefix = f"PCA{index_dim},L2norm," if index_dim < dim else ""
    if kind != "ivfpq":
        return prefix + ("Flat" if kind == "flat" else "HNSW32,Flat")
    per_centroid = max(sample_rows // MIN_POINTS_PER_CENTROID, 2)
    lists = min(round(4 * math.sqrt(count)), per_centroid)
    pq_m = next(m for m in range(max(1, index_dim // 8), 0, -1) if index_dim % m == 0)
    bits = min(8, int(math.log2(per_centroid)))
    return f"{prefix}IVF{lists},PQ{pq_m}x{bits}np,Refine(SQ8)"


def _normalised(batch: np.ndarray, where: str, *, owned: bool = False) -> np.ndarray:
    """A C-contiguous float32 array with unit rows (zero rows stay zero); finite reals only.

    `owned`: `batch` is a fresh array nobody else holds (rows read from a file, a fancy-indexed
    copy), so it is normalised in place where its layout allows, not copied (a flat build of
    65,536 x 1280 streamed rows peaked at 644 MB instead of 724).
    """
    if batch.dtype.kind not in "iuf":
        raise ConfigError(f"{where}: vectors must be real numbers, got dtype {batch.dtype}")
    out = np.array(batch, dtype=np.float32, order="C", copy=None if owned else True)
    if not np.isfinite(out).all():
        raise ConfigError(f"{where}: vectors contain NaN or infinite values")
    faiss.normalize_L2(out)
    return out


def _train_uncentred_pca(index: faiss.Index, sample: np.ndarray) -> None:
    """Train the factory's PCA on the uncentred second moment: FAISS's centred PCA would shift
    every score by the mean's share, and rank by distance to the mean, not by cosine.

    Random sign flips make the sample's mean ~0, so the centred PCA sees E[x x^T]; the mean is
    then zeroed so the transform is a pure projection. `index.train` keeps a trained transform.
    """
    while not isinstance(index, faiss.IndexPreTransform):  # under IDMap (and Refine)
        index = faiss.downcast_index(index.index if hasattr(index, "index") else index.base_index)
    pca = faiss.downcast_VectorTransform(index.chain.at(0))
    signs = np.where(np.random.default_rng(0).random(len(sample)) < 0.5, -1, 1).astype(np.float32)
    sample *= signs[:, None]  # in place: the sample can be large
    pca.train(sample)
    sample *= signs[:, None]
    faiss.copy_array_to_vector(np.zeros(pca.d_in, np.float32), pca.mean)
    pca.prepare_Ab()
    eigenvalues = faiss.vector_to_array(pca.eigenvalues)
    share = eigenvalues[: pca.d_out].sum() / max(eigenvalues.sum(), 1e-12)
    logger.info("PCA %d -> %d keeps %.1f%% of the energy", pca.d_in, pca.d_out, 100 * share)


def _on_gpu(index: faiss.Index, kind: str, use_gpu: bool | None) -> tuple[faiss.Index, bool]:
    """The index on all GPUs when asked (None: when FAISS sees one) and FAISS can move it."""
    gpus = faiss.get_num_gpus()
    if use_gpu and not gpus:
        logger.warning("use_gpu=True but FAISS sees no GPU (faiss-cpu?); using the CPU")
    if not gpus or use_gpu is False or kind not in GPU_KINDS:
        return index, False
    try:
        options = faiss.GpuMultipleClonerOptions()
        options.useFloat16 = kind == "ivfpq"  # float16 PQ lookup tables (large codes need them)
        return faiss.index_cpu_to_all_gpus(index, co=options), True
    except (RuntimeError, AttributeError) as exc:
        logger.warning("cannot put the %s index on the GPU (%s); using the CPU", kind, exc)
        return index, False


def _parameter_space() -> faiss.ParameterSpace:
    """FAISS's search-parameter setter and explorer (the GPU one reaches GPU indexes too)."""
    space = faiss.GpuParameterSpace() if faiss.get_num_gpus() else faiss.ParameterSpace()
    space.verbose = 0  # its C printf would land on stdout, after our output
    return space


def _add_all(
    index: faiss.Index,
    vectors: np.ndarray | NpyRows,
    add_batch: int,
    query_rows: np.ndarray,
    queries: np.ndarray,
) -> np.ndarray:
    """Add every vector but the held-out queries; return the queries' exact top-k among them."""
    k = min(EVAL_K, len(vectors) - len(queries))
    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    for start in range(0, len(vectors), add_batch):
        chunk = _normalised(
            vectors[start : start + add_batch],
            f"vectors from row {start}",
            owned=isinstance(vectors, NpyRows),
        )
        if not len(queries):
            index.add(chunk)
            continue
        rows = np.arange(start, start + len(chunk))
        keep = ~np.isin(rows, query_rows, assume_unique=True)
        chunk, rows = chunk[keep], rows[keep]
        if len(rows):
            index.add_with_ids(chunk, rows)
            scores, found = faiss.knn(queries, chunk, min(k, len(rows)), faiss.METRIC_INNER_PRODUCT)
            heap.add_result(scores, rows[found])
    heap.finalize()
    return heap.I


def _search_space(index: faiss.Index) -> faiss.ParameterSpace:
    """FAISS's search-parameter ranges for `index` (powers of two) plus their midpoints.

    The midpoints matter: at 1M vectors efSearch 96 reached 0.965 where 64 fell short and 128
    is slower. Polysemous filtering (`ht`) is left out: the SQ8 re-rank does that job, and its
    hundreds of values would swamp the exploration.
    """
    found, space = faiss.ParameterSpace(), _parameter_space()
    found.initialize(index)
    for i in range(found.parameter_ranges.size()):
        powers = found.parameter_ranges.at(i)
        if powers.name != "ht":
            values = faiss.vector_to_array(powers.values)
            values = np.union1d(values, values[:-1][values[:-1] >= 2] * 1.5)
            faiss.copy_array_to_vector(values, space.add_range(powers.name).values)
    return space


def _tune(
    index: faiss.Index,
    space: faiss.ParameterSpace,
    queries: np.ndarray,
    truth: np.ndarray,
    target: float,
) -> tuple[dict[str, int], float]:
    """The fastest Pareto-optimal setting whose recall@k reaches `target` (else the most
    accurate, with a warning), and its recall, from FAISS's exploration of `space`."""
    criterion = faiss.IntersectionCriterion(len(queries), truth.shape[1])
    criterion.set_groundtruth(None, truth)
    explored = space.explore(index, queries, criterion)  # owns its points: keep a reference
    optimal = [explored.optimal_pts.at(i) for i in range(explored.optimal_pts.size())]
    best = next((p for p in optimal if p.perf >= target), optimal[-1])  # by recall, then time
    if best.perf < target:
        logger.warning("recall@10 target %.3f not reached: %.3f (%s)", target, best.perf, best.key)
    params = (item.split("=") for item in best.key.split(",") if item)
    return {name: int(float(value)) for name, value in params}, float(best.perf)


def _sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _read_sidecar(path: Path) -> IndexMeta:
    """The sidecar's metadata; IndexFileError when it is missing, unreadable, old or malformed."""
    sidecar = _sidecar_path(path)
    try:
        return IndexMeta.model_validate_json(sidecar.read_bytes())
    except FileNotFoundError:
        reason = f"its metadata file {sidecar.name} is missing"
    except OSError as exc:
        reason = f"cannot read its metadata file {sidecar.name} ({exc})"
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(map(str, error["loc"])) or "file"
        reason = f"{sidecar.name} is not format-{SIDECAR_FORMAT} metadata ({where}: {error['msg']})"
    raise IndexFileError(path, f"{reason}; rebuild the index")
