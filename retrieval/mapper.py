"""The two map stages of an index build, shared by the Ray Data and the in-process runners.

`decode_batch` is CPU work (read bytes, decode safely, reject unusable images, make the
luminance thumbnail); `DescriptorMapper` is a callable class that loads the model once and
turns thumbnails into descriptors (an image whose descriptors are not finite is rejected with
that reason). Batches are dicts of numpy arrays, as Ray Data passes them. Each row carries the
seconds its stages took (`STAGE_COLUMNS`), which the build sums into its report.
"""

from __future__ import annotations

import hashlib
import io
import time

import numpy as np
import torch
from PIL import Image

from chromaref.platform.color import mean_chroma
from chromaref.platform.config import MIN_REFERENCE_CHROMA
from chromaref.platform.errors import ChromarefError, FileError
from chromaref.platform.images import MIN_SIDE, load_image, max_pixels_limit
from chromaref.retrieval import store
from chromaref.retrieval.corpus import read_bytes
from chromaref.retrieval.descriptors import (
    DescriptorConfig,
    DescriptorExtractor,
    luminance_thumbnail,
)

# Per-row seconds of each worker stage; the build adds "write" and "index" on the driver.
STAGE_COLUMNS = {"read": "seconds_read", "decode": "seconds_decode", "infer": "seconds_infer"}


def _draft_rgb(data: bytes, size: int) -> np.ndarray | None:
    """A plain RGB JPEG decoded at the smallest DCT scale still >= size x size (Pillow's draft
    mode: up to 64x fewer pixels for large photos), skipping `load_image`'s full-size gray and
    orientation passes; None for anything else, which `load_image` decodes or explains."""
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as img:
            w, h = img.size
            plain = img.mode == "RGB" and img.getexif().get(0x0112, 1) == 1  # no rotation
            if not plain or w * h > max_pixels_limit() or min(w, h) < MIN_SIDE:
                return None
            img.draft("RGB", (size, size))
            return np.asarray(img)
    except Exception:  # any doubt goes to the safe loader
        return None


def _why(exc: Exception) -> str:
    """A skip reason; a FileError names the uri, which the skipped list already holds."""
    return exc.reason if isinstance(exc, FileError) else str(exc)


def _decode_one(uri: str, image_size: int) -> tuple[np.ndarray, str, str, float, float]:
    """(thumbnail, content sha1, reason, seconds reading, seconds decoding and checking);
    reason is empty when the image is usable."""
    empty = np.zeros((image_size, image_size), np.float32)
    start = time.perf_counter()
    try:
        data = read_bytes(uri)
    except (ChromarefError, OSError) as exc:
        return empty, "", _why(exc), time.perf_counter() - start, 0.0
    read = time.perf_counter()
    thumbnail, digest, reason = empty, hashlib.sha1(data).hexdigest(), ""
    try:
        rgb = _draft_rgb(data, image_size)
        rgb = load_image(data, name=uri).rgb if rgb is None else rgb
        if mean_chroma(rgb) < MIN_REFERENCE_CHROMA:  # on a 64 px probe
            reason = "gray image: it has no color to serve as a reference"
        else:
            thumbnail = luminance_thumbnail(rgb, image_size)
    except (ChromarefError, OSError) as exc:
        digest, reason = "", _why(exc)
    return thumbnail, digest, reason, read - start, time.perf_counter() - read


def decode_batch(batch: dict[str, np.ndarray], image_size: int) -> dict[str, np.ndarray]:
    """Add `thumbnail`, `sha1`, `reason` and read/decode seconds columns to corpus items, on
    one torch thread (Ray runs many decode tasks side by side)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return decode_rows(batch, image_size)
    finally:
        torch.set_num_threads(threads)  # the descriptor model may run next in this process


def decode_rows(batch: dict[str, np.ndarray], image_size: int) -> dict[str, np.ndarray]:
    """`decode_batch` leaving torch's (process-wide) thread count alone: for a decode thread
    running beside the descriptor model in the same process."""
    decoded = [_decode_one(str(uri), image_size) for uri in batch["uri"]]
    thumbnails, digests, reasons, read, decode = zip(*decoded, strict=True)
    return {
        **batch,
        "thumbnail": np.stack(thumbnails),
        "sha1": np.array(digests),
        "reason": np.array(reasons),
        STAGE_COLUMNS["read"]: np.array(read),
        STAGE_COLUMNS["decode"]: np.array(decode),
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
        infer = np.zeros(n)
        if ok.any():
            start = time.perf_counter()
            described = self.extractor(batch["thumbnail"][ok])
            infer[ok] = (time.perf_counter() - start) / ok.sum()
            for name in out:
                out[name][ok] = getattr(described, name)
            finite = np.logical_and.reduce(
                [np.isfinite(v.reshape(n, -1)).all(axis=1) for v in out.values()]
            )
            reasons[~finite] = store.NON_FINITE
            for values in out.values():
                values[~finite] = 0
        rest = {k: v for k, v in batch.items() if k not in ("thumbnail", "reason")}
        reasons = np.array(reasons.tolist(), dtype=str)
        return {**rest, **out, "reason": reasons, STAGE_COLUMNS["infer"]: infer}
