"""Search a built index: `Index.open(path).search(gray_image, k)`.

Opening checks the manifest against the running descriptor model and refuses a mismatch.
Descriptors of the corpus are memory-mapped, so only the candidates of a query are read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyarrow.parquet as pq

from chromaref.platform.errors import ConfigError, IndexMismatchError
from chromaref.platform.images import ImageInput, as_rgb, load_image
from chromaref.retrieval import store
from chromaref.retrieval.corpus import read_bytes
from chromaref.retrieval.descriptors import DescriptorConfig, DescriptorExtractor, Descriptors
from chromaref.retrieval.ranking import RankingConfig, rank_candidates
from chromaref.retrieval.vector_index import VectorIndex


@dataclass(frozen=True)
class SearchHit:
    """A recommended reference with every score that ranked it."""

    id: str
    uri: str
    label: str | None
    semantic: float
    luminance: float | None
    local: float | None
    score: float

    @property
    def name(self) -> str:
        """The file name without suffix (of the Parquet or tar file for their rows)."""
        location = self.uri
        if location.startswith(("parquet://", "tar://")):
            location = location.split("://", 1)[1].rsplit("#", 1)[0]
        return Path(urlsplit(location).path if "://" in location else location).stem


def _read_manifest(path: Path) -> dict:
    manifest_path = path / store.MANIFEST
    if not manifest_path.is_file():
        hint = (
            " (an unfinished build is in progress or was interrupted)"
            if store.staging_dir(path).exists()
            else ""
        )
        raise ConfigError(
            f"{path} is not a chromaref index: no {store.MANIFEST}{hint}; "
            "build one with `chromaref index build CORPUS --out DIR`"
        )
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format_version") != store.FORMAT_VERSION:
        raise IndexMismatchError(
            f"{path} has index format {manifest.get('format_version')}, this chromaref reads "
            f"format {store.FORMAT_VERSION}; rebuild it with `chromaref index build`"
        )
    return manifest


class Index:
    """A reference index opened for search."""

    def __init__(self, path: Path, manifest: dict, extractor: DescriptorExtractor) -> None:
        self.path = path
        self.manifest = manifest
        self.extractor = extractor
        self.vectors = VectorIndex.load(path / "semantic.faiss")
        self.rows = pq.read_table(path / "rows.parquet").to_pydict()
        self.luminance = np.load(path / "luminance.npy", mmap_mode="r")
        self.local = np.load(path / "local.npy", mmap_mode="r")

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, extractor: DescriptorExtractor | None = None
    ) -> Index:
        """Open an index; refuse one built by a different descriptor model.

        Raises:
            ConfigError: `path` is not an index.
            IndexMismatchError: the index was built with another model, weights or format.
        """
        path = Path(path)
        manifest = _read_manifest(path)
        config = DescriptorConfig.model_validate(manifest["build"]["descriptor"])
        extractor = extractor or DescriptorExtractor(config)
        if extractor.model_id != manifest["model_id"]:
            raise IndexMismatchError(
                f"{path} was built with descriptor model {manifest['model_id']}, but the running "
                f"model is {extractor.model_id}; rebuild the index or use the same weights"
            )
        return cls(path, manifest, extractor)

    def __len__(self) -> int:
        return int(self.manifest["count"])

    def describe(self, image: ImageInput) -> Descriptors:
        return self.extractor.describe_images([as_rgb(image)])

    def search(
        self,
        image: ImageInput,
        k: int = 5,
        *,
        ranking: RankingConfig | None = None,
        exclude_ids: frozenset[str] = frozenset(),
    ) -> list[SearchHit]:
        """The k best references for a (gray or color) query image, best first."""
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        ranking = ranking or RankingConfig()
        query = self.describe(image)
        if "semantic" in ranking.stages:
            wanted = min(len(self), ranking.candidates + len(exclude_ids))
            scores, rows = self.vectors.search(query.semantic, wanted)
            keep = (rows[0] >= 0) & np.array(
                [r < 0 or self.rows["id"][r] not in exclude_ids for r in rows[0]]
            )
            rows, semantic = rows[0][keep], scores[0][keep]
        else:  # ablation: luminance/local only, over every row
            rows = np.array(
                [r for r in range(len(self)) if self.rows["id"][r] not in exclude_ids], np.int64
            )
            semantic = np.asarray(self._semantic()[rows] @ query.semantic[0], np.float32)
        if len(rows) == 0:
            return []
        ranked = rank_candidates(
            rows,
            semantic,
            query.luminance[0].astype(np.float32),
            np.asarray(self.luminance[rows], np.float32),
            query.local[0].astype(np.float32),
            lambda chosen: np.asarray(self.local[chosen], np.float32),
            config=ranking,
            k=k,
        )
        return [
            SearchHit(
                id=self.rows["id"][r.row],
                uri=self.rows["uri"][r.row],
                label=self.rows["label"][r.row],
                semantic=r.semantic,
                luminance=r.luminance,
                local=r.local,
                score=r.score,
            )
            for r in ranked
        ]

    def _semantic(self) -> np.ndarray:
        return np.load(self.path / "semantic.npy", mmap_mode="r")

    def load_reference(self, hit: SearchHit) -> np.ndarray:
        """The reference image of a hit, as RGB uint8."""
        return load_image(read_bytes(hit.uri), name=hit.uri).rgb
