"""The two model-holding deployments: `Retriever` (the index) and `Colorizer` (the pipeline).

Both take the validated `ServeConfig` as a dict (what Ray Serve config files can carry), set
torch's threads from their CPUs, and answer `ready()` once loaded. Arrays travel between
replicas as numpy (Ray's zero-copy serialisation); results leave as encoded bytes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from ray import serve

from chromaref.platform.errors import ChromarefError, ConfigError
from chromaref.platform.images import to_pil_rgb
from chromaref.retrieval.default import open_index
from chromaref.serving.config import ServeConfig

logger = logging.getLogger(__name__)

JPEG_QUALITY = 92
THUMBNAIL_QUALITY = 80
CACHED_REFERENCES = 32  # prepared index references kept per Colorizer replica
_NO_PIXELS = np.zeros((0, 0, 3), np.uint8)


@dataclass(frozen=True)
class ReferenceImage:
    """A reference for one request: from the index (id and score) or uploaded (score None)."""

    id: str
    name: str
    rgb: np.ndarray
    score: float | None = None
    label: str | None = None
    from_index: bool = False


@dataclass(frozen=True)
class ColorizeJob:
    target: np.ndarray  # (H, W, 3) uint8
    references: list[ReferenceImage]
    format: str = "png"


@dataclass(frozen=True)
class ColorizedImage:
    data: bytes
    format: str
    reference: ReferenceImage
    seconds: dict[str, float] = field(default_factory=dict)


def encode_image(rgb: np.ndarray, fmt: str, *, quality: int = JPEG_QUALITY) -> bytes:
    """PNG (lossless: the target's luminance survives exactly) or JPEG bytes."""
    buffer = io.BytesIO()
    if fmt == "png":
        to_pil_rgb(rgb).save(buffer, format="PNG", compress_level=1)
    else:
        to_pil_rgb(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def thumbnail(rgb: np.ndarray, long_side: int) -> bytes:
    image = to_pil_rgb(rgb)
    image.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
    return encode_image(np.asarray(image), "jpeg", quality=THUMBNAIL_QUALITY)


def _set_threads(cpus: float) -> None:
    import torch

    torch.set_num_threads(max(1, int(cpus)))


@serve.deployment(name="Retriever")
class Retriever:
    """Holds the reference index; searches it and reads references from its corpus."""

    def __init__(self, config: dict) -> None:
        self.config = ServeConfig.model_validate(config)
        _set_threads(self.config.retriever.num_cpus)
        self.index = open_index(self.config.index, trust=self.config.trust_index)
        self.index.check_references()
        self.ids = {hit_id: row for row, hit_id in enumerate(self.index.rows["id"])}

    def ready(self) -> int:
        return len(self.index)

    def search(self, target: np.ndarray, top: int) -> list[ReferenceImage]:
        """The `top` best usable references, best first; unreadable ones are skipped."""
        hits = self.index.search(target, top)
        return self._loaded(hits)

    def suggest(self, target: np.ndarray, top: int) -> list[dict]:
        """Ranked references with a small JPEG thumbnail each (for a person to choose)."""
        return [
            {
                "id": ref.id,
                "name": ref.name,
                "label": ref.label,
                "score": ref.score,
                "thumbnail": thumbnail(ref.rgb, self.config.thumbnail_size),
            }
            for ref in self.search(target, top)
        ]

    def lookup(self, ids: list[str]) -> list[ReferenceImage] | ChromarefError:
        """The index references with these ids, in that order; an unknown or unreadable one
        is returned as the client's error (not raised: not the replica's failure)."""
        from chromaref.retrieval.index import SearchHit

        unknown = [i for i in ids if i not in self.ids]
        if unknown:
            return ConfigError(f"unknown reference id {unknown[0]!r}")
        hits = [
            SearchHit(
                id=i,
                uri=self.index.rows["uri"][self.ids[i]],
                label=self.index.rows["label"][self.ids[i]],
                semantic=0.0,
                luminance=None,
                local=None,
                score=float("nan"),
            )
            for i in ids
        ]
        loaded = self._loaded(hits)
        if len(loaded) < len(hits):
            return ConfigError("a chosen reference cannot be read; pick another")
        return [dataclasses.replace(r, score=None) for r in loaded]

    def _loaded(self, hits: list) -> list[ReferenceImage]:
        references = []
        for hit in hits:
            try:
                rgb = self.index.load_reference(hit)
            except (ChromarefError, OSError) as exc:
                logger.warning("skipped reference: %s", exc)
                continue
            references.append(
                ReferenceImage(hit.id, hit.name, rgb, float(hit.score), hit.label, True)
            )
        return references


@serve.deployment(name="Colorizer")
class Colorizer:
    """Holds the colorization pipeline: one result per reference, encoded.

    Index references are prepared once and kept (LRU), so a popular reference costs its
    backbone pass once per replica. With batching on, targets of requests that arrive together
    share one backbone pass per working shape (`ColorizationPipeline.prepare_many`).
    """

    def __init__(self, config: dict) -> None:
        from chromaref.platform.config import MatchingConfig, PipelineConfig, TrainedConfig
        from chromaref.platform.pipeline import ColorizationPipeline

        self.config = ServeConfig.model_validate(config)
        _set_threads(self.config.colorizer.num_cpus)
        pipeline_config = PipelineConfig(
            colorizer=self.config.method,
            matching=MatchingConfig(working_size=self.config.working_size),
            trained=TrainedConfig(model=self.config.model),
        )
        self.pipeline = ColorizationPipeline(pipeline_config)
        self.prepared: OrderedDict[str, object] = OrderedDict()
        batching = self.config.batching
        self._batched.set_max_batch_size(batching.max_batch_size)
        self._batched.set_batch_wait_timeout_s(batching.wait_timeout_s)

    def ready(self) -> str:
        """The replica's actor name (a fault test kills it by name)."""
        import ray

        return ray.get_runtime_context().get_actor_name() or ""

    async def colorize(self, job: ColorizeJob) -> list[ColorizedImage] | ChromarefError:
        """One encoded result per reference of `job`, in order; a client's error (a gray
        reference) is returned, not raised, so the replica does not log it as a failure."""
        if self.config.batching.enabled:
            return await self._batched(job)
        return (await asyncio.to_thread(self._run, [job]))[0]

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.01)
    async def _batched(
        self, jobs: list[ColorizeJob]
    ) -> list[list[ColorizedImage] | ChromarefError]:
        return await asyncio.to_thread(self._run, jobs)

    def _run(self, jobs: list[ColorizeJob]) -> list[list[ColorizedImage] | ChromarefError]:
        """Colorize every job; a job's own failure (a gray reference) is returned in its
        place, so that one bad request never fails the others of its batch."""
        start = time.perf_counter()
        targets = self.pipeline.prepare_many([job.target for job in jobs])
        prepare_s = (time.perf_counter() - start) / len(jobs)
        results: list[list[ColorizedImage] | ChromarefError] = []
        for job, target in zip(jobs, targets, strict=True):
            try:
                results.append(self._colorize_one(job, target, prepare_s))
            except ChromarefError as exc:
                results.append(exc)
        return results

    def _colorize_one(self, job: ColorizeJob, target, prepare_s: float) -> list[ColorizedImage]:
        outputs = []
        for reference in job.references:
            start = time.perf_counter()
            prepared = self._prepared(reference)
            output = self.pipeline.colorize(target, prepared)
            encode_start = time.perf_counter()
            data = encode_image(output.rgb, job.format)
            seconds = {
                "prepare_target": prepare_s,
                "colorize": encode_start - start,
                "encode": time.perf_counter() - encode_start,
            }
            outputs.append(ColorizedImage(data, job.format, _without_pixels(reference), seconds))
        return outputs

    def _prepared(self, reference: ReferenceImage):
        """A prepared, checked reference; index references come from (and go to) the LRU."""
        if reference.from_index and reference.id in self.prepared:
            self.prepared.move_to_end(reference.id)
            return self.prepared[reference.id]
        prepared = self.pipeline.prepare(reference.rgb, name=reference.name, full_l=False)
        self.pipeline.check_reference(prepared)
        if reference.from_index:
            self.prepared[reference.id] = prepared
            if len(self.prepared) > CACHED_REFERENCES:
                self.prepared.popitem(last=False)
        return prepared


def _without_pixels(reference: ReferenceImage) -> ReferenceImage:
    """The reference's identity, without its pixels (the response does not carry them)."""
    return dataclasses.replace(reference, rgb=_NO_PIXELS)
