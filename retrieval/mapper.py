"""The two map stages of an index build, shared by the Ray Data and the in-process runners.

`decode_batch` is CPU work (read bytes, decode safely, reject unusable images, make the
luminance thumbnail); `DescriptorMapper` is a callable class that loads the model once and
turns thumbnails into descriptors (an image whose descriptors are not finite is rejected with
that reason). Batches are dicts of numpy arrays, as Ray Data passes them.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from chromaref.platform.color import mean_chroma
from chromaref.platform.config import MIN_REFERENCE_CHROMA
from chromaref.platform.errors import ChromarefError, FileError
from chromaref.platform.images import load_image
from chromaref.retrieval import store
from chromaref.retrieval.corpus import read_bytes
from chromaref.retrieval.descriptors import (
    DescriptorConfig,
    DescriptorExtractor,
    luminance_thumbnail,
)


def _decode_one(uri: str, image_size: int) -> tuple[np.ndarray, str, str]:
    """(thumbnail, content sha1, reason); reason is empty when the image is usable."""
    empty = np.zeros((image_size, image_size), np.float32)
    try:
        data = read_bytes(uri)
        rgb = load_image(data, name=uri).rgb
    except FileError as exc:  # the uri is already in the skipped list: keep only the reason
        return empty, "", exc.reason
    except (ChromarefError, OSError) as exc:
        return empty, "", str(exc)
    digest = hashlib.sha1(data).hexdigest()
    if mean_chroma(rgb) < MIN_REFERENCE_CHROMA:
        return empty, digest, "gray image: it has no color to serve as a reference"
    return luminance_thumbnail(rgb, image_size), digest, ""


def decode_batch(batch: dict[str, np.ndarray], image_size: int) -> dict[str, np.ndarray]:
    """Add `thumbnail`, `sha1` and `reason` columns to a batch of corpus items."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many decode tasks run side by side; one thread each
    try:
        decoded = [_decode_one(str(uri), image_size) for uri in batch["uri"]]
    finally:
        torch.set_num_threads(threads)  # the descriptor model may run next in this process
    return {
        **batch,
        "thumbnail": np.stack([d[0] for d in decoded]),
        "sha1": np.array([d[1] for d in decoded]),
        "reason": np.array([d[2] for d in decoded]),
    }


class DescriptorMapper:
    """Callable class for `map_batches`: the model is built once per worker, in the worker
    (an in-process build hands over the extractor it already has)."""

    def __init__(
        self,
        config_json: str,
        device: str | None = None,
        *,
        extractor: DescriptorExtractor | None = None,
    ) -> None:
        self.extractor = extractor or DescriptorExtractor(
            DescriptorConfig.model_validate_json(config_json), device=device
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ok = batch["reason"] == ""
        dims = self.extractor.dims()
        n = len(batch["uri"])
        out = {
            "semantic": np.zeros((n, *dims["semantic"]), np.float32),
            "luminance": np.zeros((n, *dims["luminance"]), np.float16),
            "local": np.zeros((n, *dims["local"]), np.float16),
        }
        reasons = batch["reason"].astype(object)
        if ok.any():
            described = self.extractor(batch["thumbnail"][ok])
            for name in out:
                out[name][ok] = getattr(described, name)
            finite = np.logical_and.reduce(
                [np.isfinite(v.reshape(n, -1)).all(axis=1) for v in out.values()]
            )
            reasons[~finite] = store.NON_FINITE
            for values in out.values():
                values[~finite] = 0
        rest = {k: v for k, v in batch.items() if k not in ("thumbnail", "reason")}
        return {**rest, **out, "reason": np.array(reasons.tolist(), dtype=str)}
