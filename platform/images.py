"""The one safe image loader and saver used by every entry point (CLI, training, HTTP API).

Images come from users, so decoding is treated as untrusted input: size limits are checked from
the header before any pixel is decoded (decompression bombs), with Pillow's own guard moved to
the same limit for the whole load (`_PillowGuard`), the whole file is decoded eagerly so
truncation is reported here and not deep inside a model, every failure becomes an
`ImageLoadError` that names the file and the reason, and every Pillow mode (CMYK, 16-bit, palette,
alpha, ...) is normalised to one thing: an (H, W, 3) uint8 sRGB array with EXIF orientation
applied. Saving is atomic, so an interrupted or failed save never leaves a half-written file.
"""

from __future__ import annotations

import io
import logging
import os
import re
import struct
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from chromaref.platform.errors import ConfigError, ImageLoadError, TooManyPixelsError
from chromaref.platform.files import atomic_path

logger = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS: int = 100_000_000
MIN_SIDE: int = 8
# File name suffixes that folder scans (CLI targets, corpora) treat as images.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
)
MAX_PIXELS_ENV = "CHROMAREF_MAX_PIXELS"

_GRAY_TOLERANCE = 2  # RGB counts as gray when channels differ by at most this many levels
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError)
_BOMB_ERRORS = (Image.DecompressionBombWarning, Image.DecompressionBombError)
_SAVE_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG"}
# EPS is decoded by running Ghostscript on the file: never on untrusted input.
_BLOCKED_FORMATS = frozenset({"EPS"})


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image as (H, W, 3) uint8 RGB plus what it was stored as."""

    rgb: np.ndarray
    path: str | None
    source_mode: str
    format: str | None
    is_grayscale: bool

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of `rgb`, after EXIF orientation."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


def max_pixels_limit(max_pixels: int | None = None) -> int:
    """The pixel limit to apply: the argument, else $CHROMAREF_MAX_PIXELS, else the default."""
    source = "max_pixels"
    if max_pixels is None:
        source, raw = MAX_PIXELS_ENV, os.environ.get(MAX_PIXELS_ENV, "").strip()
        if not raw:
            return DEFAULT_MAX_PIXELS
        try:
            max_pixels = int(raw)
        except ValueError:
            raise ConfigError(f"{source} must be a positive integer, got {raw!r}") from None
    if max_pixels <= 0:
        raise ConfigError(f"{source} must be a positive integer, got {max_pixels}")
    return max_pixels


def load_image(
    source: str | os.PathLike[str] | bytes | BinaryIO,
    *,
    max_pixels: int | None = None,
    name: str | None = None,
) -> LoadedImage:
    """Decode `source` (path, bytes or binary file object) into a `LoadedImage`.

    Raises `ImageLoadError` for anything that is not a readable image within the limits.
    """
    limit = max_pixels_limit(max_pixels)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        _check_path(path)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by the `with` below
        except PermissionError:
            raise ImageLoadError(path, "permission denied") from None
        except OSError as exc:
            raise ImageLoadError(path, f"cannot read file ({exc.strerror or exc})") from None
        with fh:
            return _load_stream(fh, path, limit, path)
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "<bytes>"
        if len(source) == 0:
            raise ImageLoadError(label, "file is empty (0 bytes)")
        with io.BytesIO(source) as fh:
            return _load_stream(fh, label, limit, None)
    if hasattr(source, "read"):
        label = name or _stream_name(source)
        if not _seekable(source):  # Pillow needs to seek; buffer one-shot streams
            with io.BytesIO(source.read()) as fh:
                return load_image(fh, max_pixels=limit, name=label)
        if _remaining(source) == 0:
            raise ImageLoadError(label, "file is empty (0 bytes)")
        return _load_stream(source, label, limit, None)
    raise TypeError(f"load_image expects a path, bytes or a binary file, got {type(source)!r}")


ImageInput = LoadedImage | np.ndarray | str | os.PathLike[str]


def as_rgb(image: ImageInput) -> np.ndarray:
    """Any accepted image input as (H, W, 3) uint8 RGB: a loaded image, a gray or RGB uint8
    array, or a path (read with `load_image`).

    Raises:
        ConfigError: an array of the wrong shape or dtype.
        ImageLoadError: a path that cannot be read safely.
    """
    if isinstance(image, LoadedImage):
        return image.rgb
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ConfigError(f"expected an (H, W, 3) uint8 array, got {image.shape} {image.dtype}")
        return image
    return load_image(image).rgb


def to_pil_rgb(rgb: np.ndarray) -> Image.Image:
    """Wrap an (H, W, 3) uint8 array as a Pillow RGB image (copying it)."""
    _check_rgb(rgb)
    return Image.fromarray(np.ascontiguousarray(rgb))


def save_image(
    rgb: np.ndarray,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    quality: int = 95,
) -> Path:
    """Atomically write `rgb` as PNG or JPEG to `path`; returns the final path.

    The image is encoded into a temp file in the target directory, fsynced and renamed over
    `path`, so a failed save leaves neither a partial file nor a damaged previous file.
    """
    final = Path(path)
    pil_format = _resolve_save_format(final, format)
    if not 1 <= quality <= 100:
        raise ConfigError(f"JPEG quality must be between 1 and 100, got {quality}")
    img = to_pil_rgb(rgb)
    options: dict[str, object] = {}
    if pil_format == "JPEG":
        options = {"quality": quality, "subsampling": 0}  # 4:4:4: chroma is our output

    with atomic_path(final) as tmp, open(tmp, "wb") as handle:
        img.save(handle, format=pil_format, **options)
    _fsync_dir(final.parent)
    logger.debug("saved %s (%s, %dx%d)", final, pil_format, img.width, img.height)
    return final


# --- loading -------------------------------------------------------------------------------


def _check_path(path: str) -> None:
    """Reject missing, non-regular and empty files with a reason a user can act on."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise ImageLoadError(path, "no such file") from None
    except PermissionError:
        raise ImageLoadError(path, "permission denied") from None
    except OSError as exc:
        raise ImageLoadError(path, f"cannot read file ({exc.strerror or exc})") from None
    if os.path.isdir(path):
        raise ImageLoadError(path, "is a directory, not an image file")
    if not os.path.isfile(path):
        raise ImageLoadError(path, "is not a regular file")
    if st.st_size == 0:
        raise ImageLoadError(path, "file is empty (0 bytes)")


def _load_stream(fh: BinaryIO, label: str, limit: int, path: str | None) -> LoadedImage:
    """Open, size-check, fully decode and normalise the image in `fh`."""
    with _PILLOW_GUARD.limit(limit), _open(fh, label, limit) as img:
        width, height = img.size
        if width * height > limit:
            raise _too_many_pixels(label, width * height, limit)
        if min(width, height) < MIN_SIDE:
            raise ImageLoadError(
                label,
                f"image is {width}x{height} pixels, too small: both sides must be at least "
                f"{MIN_SIDE} pixels",
            )
        n_frames = getattr(img, "n_frames", 1)
        if n_frames > 1:
            logger.debug("%s has %d frames; using the first", label, n_frames)
        try:
            img.load()
        except _BOMB_ERRORS as exc:
            raise _pillow_refused(label, exc, limit) from None
        except _DECODE_ERRORS as exc:
            raise ImageLoadError(label, f"file is truncated or corrupt ({exc})") from None
        source_mode, fmt = img.mode, img.format
        img = _exif_transpose(img, label)
        rgb = _to_rgb_array(img, label)
    is_gray = source_mode in _GRAY_MODES or _channels_equal(rgb, _GRAY_TOLERANCE)
    logger.debug("loaded %s: %s %s %dx%d", label, fmt, source_mode, rgb.shape[1], rgb.shape[0])
    return LoadedImage(
        rgb=rgb, path=path, source_mode=source_mode, format=fmt, is_grayscale=is_gray
    )


def _open(fh: BinaryIO, label: str, limit: int) -> Image.Image:
    """`Image.open` (header only) with errors mapped to `ImageLoadError`."""
    Image.init()
    formats = [f for f in Image.ID if f not in _BLOCKED_FORMATS]
    try:
        return Image.open(fh, formats=formats)
    except _BOMB_ERRORS as exc:
        raise _pillow_refused(label, exc, limit) from None
    except UnidentifiedImageError:
        video = PurePosixPath(label).suffix.lower() in VIDEO_SUFFIXES
        hint = "; a video is colorized by `chromaref video`" if video else ""
        raise ImageLoadError(label, f"not a recognised image format{hint}") from None
    except _DECODE_ERRORS as exc:
        raise ImageLoadError(label, f"file is truncated or corrupt ({exc})") from None


class _PillowGuard:
    """Pillow's own decompression-bomb guard, moved to our pixel limit while images load.

    Pillow checks sizes against one global, `Image.MAX_IMAGE_PIXELS` (a warning above it, an
    error above twice it), when it opens a file and again while decoding (TIFF tiles, GIF
    frames), so our limit has to be that global for the whole load, and Pillow's warning has to
    be an error. While loads run the global holds the largest limit in use (loads in several
    threads share it; each load's own header check applies its exact limit before any pixel is
    decoded), and when the last one ends the global and the warning filters are put back.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limits: list[int] = []
        self._saved: int | None = None
        self._filter: tuple[object, ...] | None = None

    @contextmanager
    def limit(self, pixels: int) -> Iterator[None]:
        with self._lock:
            if not self._limits:
                self._saved = Image.MAX_IMAGE_PIXELS
                warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
                self._filter = warnings.filters[0]
            self._limits.append(pixels)
            Image.MAX_IMAGE_PIXELS = max(self._limits)
        try:
            yield
        finally:
            with self._lock:
                self._limits.remove(pixels)
                if self._limits:
                    Image.MAX_IMAGE_PIXELS = max(self._limits)
                else:
                    Image.MAX_IMAGE_PIXELS = self._saved
                    with suppress(ValueError):
                        warnings.filters.remove(self._filter)


_PILLOW_GUARD = _PillowGuard()


def _pillow_refused(label: str, exc: Exception, limit: int) -> ImageLoadError:
    """Pillow's bomb warning or error (raised while our limit is its limit) as our message."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    if found:
        return _too_many_pixels(label, int(found.group(1)), limit)
    return ImageLoadError(label, f"image is too large to decode safely ({exc})")


def _too_many_pixels(label: str, pixels: int, limit: int) -> TooManyPixelsError:
    return TooManyPixelsError(
        label,
        f"image has {pixels} pixels, more than the limit of {limit} "
        f"(set {MAX_PIXELS_ENV} to raise it)",
    )


def _exif_transpose(img: Image.Image, label: str) -> Image.Image:
    """Apply the EXIF orientation tag in place; a broken EXIF block is logged and ignored."""
    try:
        ImageOps.exif_transpose(img, in_place=True)
    except (*_DECODE_ERRORS, KeyError, TypeError) as exc:
        logger.warning("%s: ignoring unreadable EXIF orientation (%s)", label, exc)
    return img


def _to_rgb_array(img: Image.Image, label: str) -> np.ndarray:
    """Normalise any Pillow mode to an (H, W, 3) uint8 array, alpha composited on white."""
    mode = img.mode
    if mode in ("RGB", "L"):
        return _as_rgb(np.asarray(img))
    if mode == "1":
        return _as_rgb(np.asarray(img.convert("L")))
    if mode == "LA":
        la = np.asarray(img)
        return _as_rgb(_over_white(la[..., :1], la[..., 1:])[..., 0])
    if mode.startswith("I;16"):
        return _as_rgb(_u16_to_u8(np.asarray(img)))
    if mode == "I":
        return _as_rgb(_int32_to_u8(np.asarray(img), label))
    if mode == "F":
        return _as_rgb(_float_to_u8(np.asarray(img), label))
    if mode == "CMYK":
        return np.asarray(_cmyk_to_rgb(img, label))
    if mode == "P" and "transparency" not in img.info:
        return np.asarray(img.convert("RGB"))
    if mode in ("P", "PA", "RGBA", "RGBa", "La") or "A" in img.getbands():
        rgba = np.asarray(img.convert("RGBA"))
        return _over_white(rgba[..., :3], rgba[..., 3:])
    try:
        return np.asarray(img.convert("RGB"))  # YCbCr, LAB, HSV, RGBX, ...
    except ValueError:
        raise ImageLoadError(label, f"unsupported image mode {mode!r}") from None


def _as_rgb(arr: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) uint8 -> contiguous, writable (H, W, 3) uint8."""
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return np.array(arr, dtype=np.uint8, order="C")


def _over_white(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite uint8 `color` with straight uint8 `alpha` over a white background."""
    c = color.astype(np.uint32)
    a = alpha.astype(np.uint32)
    out = (c * a + 255 * (255 - a) + 127) // 255
    return np.ascontiguousarray(out, dtype=np.uint8)


def _u16_to_u8(arr: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255 by value / 257, rounded (65535 -> 255, 32896 -> 128)."""
    return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _int32_to_u8(arr: np.ndarray, label: str) -> np.ndarray:
    """Mode "I": Pillow stores 16-bit samples here, so 0..65535 is scaled as 16-bit.

    Data outside that range has no conventional scale and is stretched from its min..max.
    """
    lo, hi = int(arr.min()), int(arr.max())
    if lo >= 0 and hi <= 0xFFFF:
        return _u16_to_u8(arr)
    logger.warning("%s: 32-bit samples span %d..%d; stretching to 0..255", label, lo, hi)
    return _stretch(arr.astype(np.float64), lo, hi)


def _float_to_u8(arr: np.ndarray, label: str) -> np.ndarray:
    """Mode "F": 0..1 is scaled by 255; any other range is stretched from its min..max."""
    arr = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(arr.min()), float(arr.max())
    if lo >= 0.0 and hi <= 1.0:
        return np.rint(arr * 255.0).astype(np.uint8)
    logger.warning("%s: float samples span %g..%g; stretching to 0..255", label, lo, hi)
    return _stretch(arr, lo, hi)


def _stretch(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Linearly map lo..hi to 0..255."""
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    return np.rint((arr - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _cmyk_to_rgb(img: Image.Image, label: str) -> Image.Image:
    """CMYK -> sRGB through the embedded ICC profile when there is one, else Pillow's formula."""
    icc = img.info.get("icc_profile")
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            out = ImageCms.profileToProfile(img, src, dst, outputMode="RGB")
            if out is not None:
                return out
        except (ImageCms.PyCMSError, OSError, ValueError) as exc:
            logger.warning("%s: unusable CMYK ICC profile (%s); naive conversion used", label, exc)
    return img.convert("RGB")


def _channels_equal(rgb: np.ndarray, tol: int) -> bool:
    """True when R, G and B differ by at most `tol` levels everywhere (checked in row blocks)."""
    rows = max(1, (1 << 20) // max(1, rgb.shape[1]))
    for start in range(0, rgb.shape[0], rows):
        block = rgb[start : start + rows].astype(np.int16)
        if np.abs(block[..., 0] - block[..., 1]).max(initial=0) > tol:
            return False
        if np.abs(block[..., 0] - block[..., 2]).max(initial=0) > tol:
            return False
    return True


def _stream_name(fh: object) -> str:
    """A label for a file object in error messages."""
    fname = getattr(fh, "name", None)
    return fname if isinstance(fname, str) else "<stream>"


def _seekable(fh: object) -> bool:
    """True when the stream supports seek/tell."""
    try:
        return bool(fh.seekable()) if hasattr(fh, "seekable") else False  # type: ignore[attr-defined]
    except (OSError, ValueError):
        return False


def _remaining(fh: BinaryIO) -> int:
    """Bytes left between the current position and the end of a seekable stream."""
    pos = fh.tell()
    end = fh.seek(0, os.SEEK_END)
    fh.seek(pos)
    return end - pos


# --- saving --------------------------------------------------------------------------------


def _check_rgb(rgb: np.ndarray) -> None:
    """Require an (H, W, 3) uint8 array."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8:
        got = getattr(rgb, "dtype", type(rgb).__name__)
        raise ConfigError(f"expected an (H, W, 3) uint8 RGB array, got dtype {got}")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
        raise ConfigError(f"expected an (H, W, 3) uint8 RGB array, got shape {rgb.shape}")


def _resolve_save_format(path: Path, format: str | None) -> str:
    """Pillow format name from `format` or, when it is None, from the file suffix."""
    key = (format if format is not None else path.suffix.lstrip(".")).lower()
    if key not in _SAVE_FORMATS:
        given = f"format {format!r}" if format is not None else f"suffix {path.suffix!r}"
        raise ConfigError(f"cannot save {path}: unknown image {given}; use png or jpg")
    return _SAVE_FORMATS[key]


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (POSIX); best effort."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
