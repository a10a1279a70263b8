"""Search a built index: `Index.open(path).search(gray_image, k)`.

An index folder is untrusted input (indexes are shared between people and machines), so
opening one checks it before anything in it is used: the manifest (format, fields, each
file's size), the sha256 of the files that opening reads in full (rows.parquet,
semantic.faiss and its sidecar: a damaged FAISS file can crash FAISS's reader, so it is
hashed before it is parsed), the arrays' dtype and shape, FAISS's vector count and
dimension, and the descriptor model. The large descriptor arrays are memory-mapped, and a
search reads only its candidates' rows, so they are not hashed whole at open (that would
read gigabytes for a million-image index, on every `chromaref index search`): each row a
search reads is checked against its digest in rows.parquet (already verified), and for
finite values. `chromaref index verify` hashes every file when a full check is wanted.
References are read only from the corpus recorded at build time (`chromaref.retrieval.confine`).
An index in an object store (`Index.open("s3://bucket/idx?endpoint_override=...")`) is first
fetched into the local cache (`chromaref.retrieval.remote_index`), then opened from there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from chromaref.platform.errors import (
    ConfigError,
    FileError,
    ImageLoadError,
    IndexFileError,
    IndexMismatchError,
)
from chromaref.platform.images import ImageInput, as_rgb, load_image
from chromaref.retrieval import remote_index, store
from chromaref.retrieval.confine import CorpusRoot, trusted_by_user
from chromaref.retrieval.corpus import read_bytes
from chromaref.retrieval.descriptors import DescriptorConfig, DescriptorExtractor, Descriptors
from chromaref.retrieval.ranking import RankingConfig, rank_candidates
from chromaref.retrieval.storage import locate
from chromaref.retrieval.vector_index import VectorIndex

_ROW_SCHEMA = pa.schema(
    [(name, pa.string()) for name in ("id", "uri", "label", "sha1")]
    + [(f"digest_{name}", pa.uint64()) for name in store.DESCRIPTOR_DTYPES]
)
_OPENED_IN_FULL = (store.ROWS, store.FAISS, store.FAISS + ".json")


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


def _load_vectors(path: Path, count: int, dim: int) -> VectorIndex:
    vectors = VectorIndex.load(path / store.FAISS)
    if (vectors.count, vectors.dim) != (count, dim):
        raise IndexFileError(
            path / store.FAISS,
            f"holds {vectors.count} vectors of dim {vectors.dim}, but the index has {count} "
            f"rows of dim {dim}; rebuild the index",
        )
    return vectors


def _read_rows(path: Path, count: int) -> pa.Table:
    file = path / store.ROWS
    try:
        table = pq.read_table(file)
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise IndexFileError(file, f"not a readable Parquet file ({exc})") from None
    if not table.schema.equals(_ROW_SCHEMA):
        raise IndexFileError(file, f"unexpected columns {table.schema.names}; rebuild the index")
    if table.num_rows != count:
        raise IndexFileError(file, f"{table.num_rows} rows, but the manifest says {count}")
    for name in _ROW_SCHEMA.names:
        if name != "label" and table[name].null_count:
            raise IndexFileError(file, f"null values in {name}; rebuild the index")
    return table


def _open_array(path: Path, name: str, shape: tuple[int, ...]) -> np.ndarray:
    file = path / f"{name}.npy"
    try:
        array = np.load(file, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise IndexFileError(file, f"not a readable .npy array ({exc})") from None
    dtype = np.dtype(store.DESCRIPTOR_DTYPES[name])
    if array.shape != shape or array.dtype != dtype:
        raise IndexFileError(
            file, f"holds {array.dtype} {array.shape}, the manifest says {dtype} {shape}"
        )
    return array


class Index:
    """A reference index opened for search."""

    def __init__(
        self, path: Path, manifest: dict, extractor: DescriptorExtractor, *, trust: bool = False
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.extractor = extractor
        self.corpus = CorpusRoot(manifest["corpus"], trust=trust, origin=str(path / store.MANIFEST))
        count, dims = int(manifest["count"]), manifest["dims"]
        # the arrays first: their file sizes bound `count` before anything is read in full
        self._arrays = {
            name: _open_array(path, name, (count, *dims[name])) for name in store.DESCRIPTOR_DTYPES
        }
        store.verify_files(path, manifest, _OPENED_IN_FULL)
        self.vectors = _load_vectors(path, count, int(np.prod(dims["semantic"])))
        table = _read_rows(path, count)
        self._digests = {n: table[f"digest_{n}"].to_numpy() for n in store.DESCRIPTOR_DTYPES}
        self.rows = table.select(["id", "uri", "label", "sha1"]).to_pydict()

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        extractor: DescriptorExtractor | None = None,
        trust: bool = False,
    ) -> Index:
        """Open an index after checking it; refuse one built by a different descriptor model.

        Args:
            path: an index folder, or the URI of one in an object store (fetched into the
                local cache once per published version).
            trust: take the filesystem options, credentials or host that the index records for
                its corpus (an object store behind `endpoint_override`, hdfs://): only for an
                index you built or whose source you trust. Listing the folder in
                $CHROMAREF_TRUSTED_INDEXES does the same.

        Raises:
            ConfigError: `path` is not an index (or the store cannot be read).
            IndexMismatchError: the index was built with another model, weights or format.
            IndexFileError: a file of the index is damaged, changed or inconsistent.
        """
        source = str(path)
        if remote_index.is_remote(path):  # $CHROMAREF_TRUSTED_INDEXES lists local folders
            path = remote_index.fetch(locate(path))
        else:
            path = Path(path).expanduser()
            trust = trust or trusted_by_user(path)
        manifest = store.read_manifest(path)
        try:
            config = DescriptorConfig.model_validate(manifest["build"]["descriptor"])
        except ValidationError as exc:
            reason = f"invalid build.descriptor ({exc.errors()[0]['msg']})"
            raise IndexFileError(path / store.MANIFEST, reason) from None
        extractor = extractor or DescriptorExtractor(config)
        if extractor.model_id != manifest["model_id"]:
            raise IndexMismatchError(
                f"{source} was built with descriptor model {manifest['model_id']}, but the running "
                f"model is {extractor.model_id}; rebuild the index or use the same weights"
            )
        return cls(path, manifest, extractor, trust=trust)

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
        """The k best references for a (gray or color) query image, best first.

        Raises:
            IndexFileError: a row the search reads is damaged or not finite.
        """
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        ranking = ranking or RankingConfig()
        query = self.describe(image)
        if "semantic" in ranking.stages:
            wanted = min(len(self), ranking.candidates + len(exclude_ids))
            rows, semantic = self._semantic_candidates(query.semantic, wanted)
            keep = np.array([self.rows["id"][r] not in exclude_ids for r in rows], bool)
            rows, semantic = rows[keep], semantic[keep]
        else:  # ablation: luminance/local only, over every row
            rows = np.array(
                [r for r in range(len(self)) if self.rows["id"][r] not in exclude_ids], np.int64
            )
            semantic = self._checked_rows("semantic", rows) @ query.semantic[0]
        if len(rows) == 0:
            return []
        ranked = rank_candidates(
            rows,
            np.asarray(semantic, np.float32),
            query.luminance[0].astype(np.float32),
            self._checked_rows("luminance", rows),
            query.local[0].astype(np.float32),
            lambda chosen: self._checked_rows("local", chosen),
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

    def _semantic_candidates(self, query: np.ndarray, wanted: int) -> tuple[np.ndarray, np.ndarray]:
        """FAISS's top rows and cosines, refusing rows or scores no sound index returns."""
        scores, rows = self.vectors.search(query, wanted)
        found = rows[0] >= 0
        rows, scores = rows[0][found], scores[0][found]
        if (rows >= len(self)).any() or not np.isfinite(scores).all():
            raise IndexFileError(
                self.path / store.FAISS,
                f"returned rows beyond the index's {len(self)} or non-finite scores; "
                "rebuild the index",
            )
        return rows, scores

    def _checked_rows(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Rows of a descriptor array as float32, after checking their digests and values."""
        values = np.asarray(self._arrays[name][rows])
        changed = store.row_digests(values) != self._digests[name][rows]
        not_finite = ~np.isfinite(values.reshape(len(rows), -1)).all(axis=1)
        for bad, problem in (
            (changed, "does not match its digest in rows.parquet"),
            (not_finite, "holds NaN or infinite values"),
        ):
            if bad.any():
                raise IndexFileError(
                    self.path / f"{name}.npy",
                    f"row {int(rows[bad][0])} {problem}: damaged or changed since the build; "
                    "rebuild the index",
                )
        return values.astype(np.float32)

    def check_every_row(self) -> None:
        """Check every row of every descriptor array (digest and finite values), as a search
        does for the rows it reads: for a small index, to find damage before it is used.

        Raises:
            IndexFileError: naming the array and the first bad row.
        """
        every = np.arange(len(self))
        for name in store.DESCRIPTOR_DTYPES:
            self._checked_rows(name, every)

    def check_references(self) -> None:
        """Refuse up front an index none of whose references may be read (its corpus root is
        refused at this trust level, or a local root is absent on this machine).

        Raises:
            IndexFileError: naming the manifest, with the reason and how to opt in.
        """
        self.corpus.check()
        if "://" not in self.corpus.text and not os.path.exists(self.corpus.text):
            raise IndexFileError(
                self.corpus.origin, f"its corpus {self.corpus.text} does not exist on this machine"
            )

    def load_reference(self, hit: SearchHit) -> np.ndarray:
        """The reference image of a hit, as RGB uint8: read only from under the index's corpus
        root, at most `corpus.max_image_bytes()` bytes, then decoded by the safe loader.

        Raises:
            ImageLoadError: (naming the uri and row id) refused, unreadable or not an image.
        """
        try:
            return load_image(read_bytes(hit.uri, root=self.corpus), name=hit.uri).rgb
        except FileError as exc:
            raise ImageLoadError(hit.uri, f"{exc.reason} (index row {hit.id})") from None
        except OSError as exc:
            raise ImageLoadError(hit.uri, f"unreadable: {exc} (index row {hit.id})") from None
