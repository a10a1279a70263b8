"""Parquet corpora are read one row group at a time: listing reads the footer and labels, and
fetching one image reads its own row group only, so cost does not grow with the file."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chromaref.platform.assets import photos
from chromaref.retrieval.corpus import list_corpus, read_bytes

PROC_IO = Path("/proc/self/io")
FOOTER_READ = 64 << 10  # what pyarrow reads from the end of a file to find its footer
pytestmark = pytest.mark.skipif(not PROC_IO.is_file(), reason="needs /proc/self/io (Linux)")


def _bytes_read() -> int:
    """Bytes this process has read through read() calls so far (rchar), whatever opened them."""
    for line in PROC_IO.read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def _write_photo_groups(path: Path, groups: int, per_group: int) -> list[bytes]:
    """A Parquet file of `groups` row groups of `per_group` real photos each (labelled by
    category, uncompressed like encoded images usually are); returns every row's bytes."""
    bundled = [(p.path.read_bytes(), p.category) for p in photos()]
    rows = []
    schema = pa.schema([("image", pa.binary()), ("label", pa.string())])
    with pq.ParquetWriter(path, schema, compression="none") as writer:
        for group in range(groups):
            chosen = [bundled[(group * per_group + i) % len(bundled)] for i in range(per_group)]
            writer.write_table(pa.table(list(zip(*chosen, strict=True)), schema=schema))
            rows += [data for data, _ in chosen]
    return rows


def test_fetching_one_image_reads_only_its_row_group(tmp_path):
    path = tmp_path / "photos.parquet"
    rows = _write_photo_groups(path, groups=8, per_group=10)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 8
    group_bytes = [meta.row_group(g).column(0).total_compressed_size for g in range(8)]
    labels_bytes = sum(meta.row_group(g).column(1).total_compressed_size for g in range(8))

    before = _bytes_read()
    items = list_corpus(path)
    listed = _bytes_read() - before
    assert len(items) == len(rows) and all(item.label for item in items)
    # one footer read, then a buffered read of each group's label chunk; not one image
    assert listed <= FOOTER_READ + 8 * io.DEFAULT_BUFFER_SIZE + labels_bytes < min(group_bytes)

    row = 5 * 10 + 2  # the third image of row group 5
    before = _bytes_read()
    assert read_bytes(items[row].uri) == rows[row]
    fetched = _bytes_read() - before
    # the footer (read twice: once for the row index, once to read the group), then the group
    assert group_bytes[5] <= fetched <= group_bytes[5] + 2 * FOOTER_READ + io.DEFAULT_BUFFER_SIZE
    assert fetched < path.stat().st_size / 4


# Run in a fresh interpreter: its peak resident memory (VmHWM: unlike ru_maxrss, not inherited
# from the forking test process) after listing the file and fetching an image of its first,
# middle and last row groups, less its resident memory (VmRSS) once its modules are imported.
_PEAK_SCRIPT = """
import json, sys
import pyarrow.parquet  # imported by the first read: its memory is not reading's
from chromaref.retrieval.corpus import list_corpus, read_bytes

def memory(field):
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024

start = memory("VmRSS")
items = list_corpus(sys.argv[1])
sizes = [len(read_bytes(items[i].uri)) for i in (0, len(items) // 2, len(items) - 1)]
print(json.dumps({"items": len(items), "sizes": sizes, "growth": memory("VmHWM") - start}))
"""


@pytest.mark.slow
def test_a_large_parquet_file_is_never_held_in_memory(tmp_path):
    """A 2 GB-class file scaled down to 208 MiB of 2.2 MB row groups: peak memory grows by a
    few tens of MB (Arrow's allocator keeps what it freed), reading it whole by 500 MB."""
    path = tmp_path / "large.parquet"
    per_group = len(photos())
    rows = _write_photo_groups(path, groups=100, per_group=per_group)
    size = path.stat().st_size
    assert size > 200 << 20
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    measured = json.loads(done.stdout.splitlines()[-1])
    assert measured["items"] == len(rows)
    assert measured["sizes"] == [len(rows[0]), len(rows[len(rows) // 2]), len(rows[-1])]
    assert measured["growth"] < size / 4, (measured, size)
