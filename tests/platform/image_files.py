"""Image files crafted for the loader's tests (shared by test_images and test_pixel_cap)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image


def write_image(img: Image.Image, path: Path, fmt: str, **kwargs: object) -> Path:
    img.save(path, format=fmt, **kwargs)
    return path


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def png_with_declared_size(width: int, height: int) -> bytes:
    """A valid 8x8 PNG whose IHDR (CRC fixed up) claims width x height."""
    raw = bytearray(png_bytes(Image.new("L", (8, 8), 0)))
    assert raw[12:16] == b"IHDR"
    raw[16:24] = struct.pack(">II", width, height)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    return bytes(raw)
