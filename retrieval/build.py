"""Build a reference index from a corpus: plan shards, describe images, write, consolidate.

    chromaref index build ~/imagenet/train --out ~/indexes/imagenet     # local Ray, automatic
    RAY_ADDRESS=ray://head:10001 chromaref index build s3://bucket/corpus --out idx   # any cluster
    chromaref index build s3://bucket/corpus --out s3://bucket/indexes/corpus       # into a store

Reader -> decode (CPU tasks) -> descriptors (actor pool, GPU when present) -> shard writer on
the driver, with Ray Data as the distributor; `runner="local"` runs the same stages
in-process (small corpora, the bundled default index). Shards are planned from the sorted
corpus listing, so a killed build resumes with the same plan and never duplicates an image.
An index bound for an object store is built in a local folder, then published manifest last
(`chromaref.retrieval.remote_index`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from chromaref.platform.errors import ConfigError
from chromaref.platform.locks import exclusive
from chromaref.retrieval import remote_index, store
from chromaref.retrieval.corpus import CorpusItem, list_corpus
from chromaref.retrieval.descriptors import DescriptorConfig, DescriptorExtractor
from chromaref.retrieval.finalize import finalize_index
from chromaref.retrieval.mapper import STAGE_COLUMNS, DescriptorMapper, decode_batch, decode_rows
from chromaref.retrieval.stderr_filter import RAY_NOISE, dropping_stderr_lines
from chromaref.retrieval.storage import locate
from chromaref.retrieval.vector_index import VectorIndexConfig

logger = logging.getLogger(__name__)
Progress = Callable[[int, int], None]  # (images done, images total)


class BuildConfig(BaseModel):
    """Everything an index build needs; stored in the manifest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    descriptor: DescriptorConfig = DescriptorConfig()
    vectors: VectorIndexConfig = VectorIndexConfig()
    runner: Literal["ray", "local"] = "ray"
    shard_size: int = Field(1000, ge=1, description="images per Parquet shard (resume unit)")
    batch_size: int = Field(32, ge=1, description="images per descriptor batch")
    decode_batch_size: int = Field(16, ge=1, description="images per decode task")
    concurrency: int | None = Field(None, ge=1, description="descriptor actors; None = auto")
    gpus_per_actor: float | None = Field(None, ge=0, description="None = 1 if GPUs exist")


STAGES = ("read", "decode", "infer", "write", "index")


@dataclass
class BuildReport:
    """What a build did, for the CLI summary and the manifest.

    `stage_seconds` splits the work: read, decode (with the gray check and thumbnail) and infer
    are summed over all workers, so they can add up to more than `seconds`; write (shards) and
    index (consolidation, FAISS, manifest) run on the driver.
    """

    index_dir: str
    count: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    images_per_second: float = 0.0
    index_bytes: int = 0
    shards: int = 0
    shards_resumed: int = 0
    described: int = 0  # images this run read and described (resumed shards are not)
    stage_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    def clock(self, seconds: float) -> None:
        """Set the wall time so far and the rate of described images it gives."""
        self.seconds = seconds
        self.images_per_second = self.described / max(seconds, 1e-9)

    def stages_text(self) -> str:
        """One line for the CLI: seconds per stage, workers' stages summed."""
        split = ", ".join(f"{name} {self.stage_seconds[name]:.1f}" for name in STAGES)
        return f"stage seconds (summed over workers): {split}"


@dataclass(frozen=True)
class _Shard:
    index: int
    items: list[CorpusItem]

    @property
    def key(self) -> str:
        return store.shard_key([i.id for i in self.items])


def plan_shards(items: list[CorpusItem], shard_size: int) -> list[_Shard]:
    return [
        _Shard(n, items[start : start + shard_size])
        for n, start in enumerate(range(0, len(items), shard_size))
    ]


def _rows(shards: list[_Shard]) -> list[dict[str, object]]:
    return [
        {"id": i.id, "uri": i.uri, "label": i.label or "", "shard": s.index}
        for s in shards
        for i in s.items
    ]


class _ShardAssembler:
    """Collects described rows per shard on the driver and writes each shard once complete."""

    def __init__(self, staging: Path, shards: list[_Shard], stage_seconds: dict[str, float]):
        self.staging = staging
        self.shards = {s.index: s for s in shards}
        self.pending: dict[int, list[dict[str, np.ndarray]]] = {s.index: [] for s in shards}
        self.seen: dict[int, set[str]] = {s.index: set() for s in shards}
        self.stage_seconds = stage_seconds

    def add(self, batch: dict[str, np.ndarray]) -> int:
        """Take a batch (any mix of shards); returns how many new images it completed."""
        for stage, column in STAGE_COLUMNS.items():
            self.stage_seconds[stage] += float(batch.pop(column).sum())
        added = 0
        for index in np.unique(batch["shard"]):
            rows = batch["shard"] == index
            part = {k: v[rows] for k, v in batch.items()}
            fresh = np.array([i not in self.seen[index] for i in part["id"]])  # retried blocks
            part = {k: v[fresh] for k, v in part.items()}
            self.seen[index].update(part["id"].tolist())
            self.pending[int(index)].append(part)
            added += len(part["id"])
            if len(self.seen[index]) == len(self.shards[index].items):
                self._flush(int(index))
        return added

    def _flush(self, index: int) -> None:
        start = time.perf_counter()
        parts = self.pending.pop(index)
        rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        order = {item.id: n for n, item in enumerate(self.shards[index].items)}
        by_plan = np.argsort([order[i] for i in rows["id"]])
        rows = {k: v[by_plan] for k, v in rows.items()}
        name = f"shards/shard-{index:05d}.parquet"
        digest = store.write_shard(self.staging / name, rows)
        record = store.ShardRecord(index, self.shards[index].key, name, digest, len(by_plan))
        store.log_shard(self.staging, record)
        self.stage_seconds["write"] += time.perf_counter() - start


def _local_batches(
    shards: list[_Shard], config: BuildConfig, extractor: DescriptorExtractor
) -> Iterator[dict[str, np.ndarray]]:
    """Decode batch n + 1 on a thread while batch n is described, as Ray Data overlaps the
    two stages (JPEG decoding and torch release the GIL)."""
    mapper = DescriptorMapper(config.descriptor.model_dump_json(), extractor=extractor)
    rows = _rows(shards)
    chunks = [rows[i : i + config.batch_size] for i in range(0, len(rows), config.batch_size)]

    def decode(chunk: list[dict[str, object]]) -> dict[str, np.ndarray]:
        batch = {k: np.array([r[k] for r in chunk]) for k in chunk[0]}
        return decode_rows(batch, config.descriptor.image_size)

    with ThreadPoolExecutor(1, thread_name_prefix="chromaref-decode") as pool:
        upcoming = [pool.submit(decode, chunk) for chunk in chunks[:1]]
        for chunk in [*chunks[1:], None]:
            decoded = upcoming.pop().result()
            if chunk is not None:
                upcoming.append(pool.submit(decode, chunk))
            yield mapper(decoded)


def _ray_batches(
    shards: list[_Shard], config: BuildConfig, address: str | None
) -> Iterator[dict[str, np.ndarray]]:
    import ray

    from chromaref.retrieval.runtime import descriptor_pool_size, ensure_ray

    ensure_ray(address)
    actors, cpus, gpus = descriptor_pool_size()
    actors = config.concurrency or actors
    gpus = gpus if config.gpus_per_actor is None else config.gpus_per_actor
    rows = _rows(shards)
    ds = ray.data.from_items(
        rows, override_num_blocks=max(1, len(rows) // config.decode_batch_size)
    )
    ds.context.execution_options.preserve_order = True  # bounded buffering per shard
    ds = ds.map_batches(
        decode_batch,
        fn_kwargs={"image_size": config.descriptor.image_size},
        batch_size=config.decode_batch_size,
        num_cpus=1,
    )
    ds = ds.map_batches(
        DescriptorMapper,
        fn_constructor_kwargs={"config_json": config.descriptor.model_dump_json()},
        batch_size=config.batch_size,
        concurrency=(1, actors),  # keeps going when a node (and its actors) is lost
        num_cpus=cpus,
        num_gpus=gpus,
    )
    logger.info("descriptor actors: %d (cpus %.1f, gpus %.1f each)", actors, cpus, gpus)
    with dropping_stderr_lines(RAY_NOISE):  # Ray is up: its processes keep the real stderr
        yield from ds.iter_batches(batch_size=None, batch_format="numpy")


def _refuse_to_replace_non_index(index_dir: Path) -> None:
    """A build replaces an old index; it must never replace a folder of other files."""
    reason = store.why_not_replaceable(index_dir)
    if reason:
        raise ConfigError(
            f"{index_dir} is not a chromaref index that a build may replace ({reason}); "
            "choose an empty or new folder for --out"
        )


def _prepare_staging(staging: Path, model_id: str, config: BuildConfig) -> None:
    """Reuse a staging dir only if it was made by the same model and settings; never reuse or
    delete a folder of that name that holds anything a build does not write."""
    if os.path.lexists(staging):
        folder = staging.is_dir() and not staging.is_symlink()
        foreign = store.foreign_entries(staging) if folder else []
        if foreign or not folder:
            what = f"holds {', '.join(foreign[:3])}" if foreign else "is not a folder"
            raise ConfigError(
                f"{staging} {what}, which an index build did not write; move it away "
                "(builds stage their work there)"
            )
    plan = staging / "plan.json"
    wanted = {"model_id": model_id, "config": config.model_dump(mode="json")}
    if plan.exists():
        try:
            if json.loads(plan.read_text()) == wanted:
                return
        except ValueError:
            pass
        logger.warning("discarding an unfinished build made with other settings: %s", staging)
        shutil.rmtree(staging)
    staging.mkdir(parents=True, exist_ok=True)
    store.write_json(plan, wanted)


def build_index(
    corpus: str | Path,
    index_dir: str | Path,
    *,
    config: BuildConfig | None = None,
    address: str | None = None,
    progress: Progress | None = None,
    wait: float = 0.0,
) -> BuildReport:
    """Index every usable image of `corpus` into `index_dir` (resuming an unfinished build).

    `index_dir` may be an object-store URI: the index is built in a local folder kept for that
    URI (a killed build resumes there), then uploaded with its manifest last.

    One build at a time per `index_dir`: another one holding `<index_dir>.lock` makes this
    one wait up to `wait` seconds, then fail (a second build into one folder is usually a
    duplicate job, and waiting would redo all of its work after it).

    Raises:
        ConfigError: the corpus does not exist, holds no images, or no usable reference;
            the Ray cluster does not answer; the store prefix holds other objects or refused
            the upload.
        LockHeldError: another build of `index_dir` still runs after `wait` seconds.
    """
    if remote_index.is_remote(index_dir):
        dest = locate(index_dir)
        remote_index.check_replaceable(dest)  # before the work, not after it
        local = remote_index.local_build_dir(str(index_dir))
        options = {"config": config, "address": address, "progress": progress, "wait": wait}
        report = build_index(corpus, local, **options)
        remote_index.publish(local, dest)
        report.index_dir = str(index_dir)
        return report
    config = config or BuildConfig()
    index_dir = Path(os.path.abspath(index_dir))  # "." and "idx/" have a name to stage beside
    if index_dir.parent == index_dir:
        raise ConfigError(f"--out {index_dir} is a filesystem root; choose a folder for the index")
    hint = "wait for that build to finish, or rerun with --wait SECONDS to queue behind it"
    with exclusive(index_dir, wait=wait, hint=hint):
        start = time.perf_counter()
        _refuse_to_replace_non_index(index_dir)
        items = list_corpus(corpus)
        if not items:
            raise ConfigError(f"corpus {corpus} holds no images")
        if config.runner == "ray":  # a dead cluster fails here, before any model is loaded
            from chromaref.retrieval.runtime import ensure_ray

            ensure_ray(address)
        extractor = DescriptorExtractor(config.descriptor)
        # Workers and the manifest get the precision "auto" chose here, the one in model_id.
        config = config.model_copy(update={"descriptor": extractor.config})
        model_id = extractor.model_id
        staging = store.staging_dir(index_dir)
        _prepare_staging(staging, model_id, config)
        shards = plan_shards(items, config.shard_size)
        done = store.completed_shards(staging)
        todo = [s for s in shards if s.key not in done]
        finished = len(items) - sum(len(s.items) for s in todo)
        report = BuildReport(
            index_dir=str(index_dir),
            count=0,
            shards=len(shards),
            shards_resumed=len(shards) - len(todo),
            described=len(items) - finished,
        )
        if progress:
            progress(finished, len(items))
        if todo:
            assembler = _ShardAssembler(staging, todo, report.stage_seconds)
            batches = (
                _local_batches(todo, config, extractor)
                if config.runner == "local"
                else _ray_batches(todo, config, address)
            )
            for batch in batches:
                finished += assembler.add(batch)
                if progress:
                    progress(finished, len(items))
        records = list(store.completed_shards(staging).values())
        report.clock(time.perf_counter() - start)  # finalize_index adds its own time
        finalize_index(
            staging,
            index_dir,
            records,
            corpus=corpus,
            model_id=model_id,
            dims=extractor.dims(),
            config=config,
            report=report,
        )
        logger.info("index build report: %s", asdict(report))
        return report
