"""The Qt resource reader that pulls gcompris' labelled photos out of Debian's `.rcc` bundles.

The fixtures were written by Qt's own `rcc` 6.4 (`tests/data/qt_fixture.qrc`, files made as
below) in format versions 1 and 3, with zlib and with zstd compression.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from benchmarks.qt_resources import QtResourceError, read_qt_resources

DATA = Path(__file__).resolve().parents[1] / "data"
EXPECTED = {
    "pfx/a/text.txt": b"chromaref " * 500,  # compressible: stored zlib-compressed
    "pfx/a/b/random.bin": random.Random(0).randbytes(300),  # stored as is
    "pfx/top.txt": b"hello",
}


@pytest.mark.parametrize("version", [1, 3])
def test_reads_every_file_of_a_real_qt_bundle(version):
    assert dict(read_qt_resources(DATA / f"qt_v{version}.rcc")) == EXPECTED


def test_zstd_entries_and_foreign_files_get_a_clear_error(tmp_path):
    with pytest.raises(QtResourceError, match="zstd"):
        dict(read_qt_resources(DATA / "qt_zstd.rcc"))
    not_rcc = tmp_path / "photo.jpg"
    not_rcc.write_bytes(b"\xff\xd8\xff" + bytes(40))
    with pytest.raises(QtResourceError, match="not a Qt resource bundle"):
        list(read_qt_resources(not_rcc))


def test_datasets_say_which_debian_package_is_missing(tmp_path, monkeypatch):
    from benchmarks import datasets

    monkeypatch.setattr(datasets, "GCOMPRIS_RCC", tmp_path / "absent")
    with pytest.raises(datasets.MissingSourceError, match="gcompris-qt-data"):
        datasets.labelled(tmp_path / "out")
