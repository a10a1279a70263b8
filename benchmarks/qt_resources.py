"""Read Qt binary resource bundles (`.rcc`, the "qres" format) without Qt.

Debian's `gcompris-qt-data` packs ~260 labelled Wikimedia photos, paintings and cartoons into
such bundles: the only labelled real-image source that installs offline. The format (Qt's
`rcc.cpp`): a header, a tree of fixed-size nodes, a names table of UTF-16 strings and a data
area whose entries may be zlib-compressed (`qCompress`: a 4-byte length, then zlib).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

_MAGIC = b"qres"
_FLAG_COMPRESSED = 0x01
_FLAG_DIRECTORY = 0x02
_FLAG_COMPRESSED_ZSTD = 0x04


class QtResourceError(ValueError):
    """The file is not a Qt resource bundle this reader understands."""


def read_qt_resources(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """Yield `(resource path, file bytes)` for every file in a `.rcc` bundle, depth first."""
    blob = Path(path).read_bytes()
    if len(blob) < 20 or blob[:4] != _MAGIC:
        raise QtResourceError(f"{path}: not a Qt resource bundle (no 'qres' magic)")
    version, tree_at, data_at, names_at = struct.unpack_from(">4I", blob, 4)
    if version not in (1, 2, 3):
        raise QtResourceError(f"{path}: unsupported qres version {version}")
    node_size = 14 if version == 1 else 22

    def name(node: int) -> str:
        (offset,) = struct.unpack_from(">I", blob, tree_at + node * node_size)
        (length,) = struct.unpack_from(">H", blob, names_at + offset)
        start = names_at + offset + 6  # length (2 bytes) + hash (4 bytes)
        return blob[start : start + 2 * length].decode("utf-16-be")

    def walk(node: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        at = tree_at + node * node_size
        (flags,) = struct.unpack_from(">H", blob, at + 4)
        if flags & _FLAG_DIRECTORY:
            count, first = struct.unpack_from(">2I", blob, at + 6)
            for child in range(first, first + count):
                yield from walk(child, f"{prefix}{name(child)}/")
            return
        (offset,) = struct.unpack_from(">I", blob, at + 10)
        (size,) = struct.unpack_from(">I", blob, data_at + offset)
        payload = blob[data_at + offset + 4 : data_at + offset + 4 + size]
        if flags & _FLAG_COMPRESSED_ZSTD:
            raise QtResourceError(f"{path}: {prefix[:-1]} is zstd-compressed (not supported)")
        if flags & _FLAG_COMPRESSED:
            payload = zlib.decompress(payload[4:])
        yield prefix[:-1], payload

    yield from walk(0, "")
