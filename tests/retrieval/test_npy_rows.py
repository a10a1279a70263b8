"""Row-streamed .npy files: the same arrays as numpy's own, and no resident-set growth."""

from __future__ import annotations

import numpy as np
import pytest

from chromaref.retrieval.npy_rows import NpyRows, NpyRowWriter


def _written(path, array, chunk):
    with NpyRowWriter(path, array.dtype, array.shape) as writer:
        for start in range(0, len(array), chunk):
            writer.append(array[start : start + chunk])


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64])
def test_rows_written_in_chunks_load_as_the_same_array(tmp_path, dtype):
    array = np.random.default_rng(0).normal(size=(103, 4, 5)).astype(dtype)
    _written(tmp_path / "a.npy", array, chunk=10)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), array)
    with NpyRows(tmp_path / "a.npy") as rows:
        assert (len(rows), rows.shape, rows.dtype, rows.ndim) == (103, (103, 4, 5), dtype, 3)
        np.testing.assert_array_equal(rows[:], array)
        np.testing.assert_array_equal(rows[7:50], array[7:50])
        np.testing.assert_array_equal(rows[100:200], array[100:])
        np.testing.assert_array_equal(rows[np.array([0, 5, 102])], array[[0, 5, 102]])
        assert rows[np.array([], np.int64)].shape == (0, 4, 5)
        assert rows[50:50].shape == (0, 4, 5)
        rows[3:4][:] = 0  # a fresh, writable array: the file is untouched
        np.testing.assert_array_equal(rows[3:4], array[3:4])


def test_reads_numpys_own_files(tmp_path):
    array = np.arange(60, dtype=np.float64).reshape(20, 3)
    np.save(tmp_path / "a.npy", array)
    with NpyRows(tmp_path / "a.npy") as rows:
        np.testing.assert_array_equal(rows[2:9], array[2:9])


def test_wrong_row_counts_and_shapes_are_refused(tmp_path):
    writer = NpyRowWriter(tmp_path / "a.npy", np.float32, (3, 2))
    writer.append(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="2 rows written, 3 declared"):
        writer.close()
    writer = NpyRowWriter(tmp_path / "b.npy", np.float32, (3, 2))
    with pytest.raises(ValueError, match="do not fit"):
        writer.append(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="do not fit"):
        writer.append(np.zeros((4, 2)))
    writer.append(np.zeros((3, 2)))
    writer.close()


def test_a_truncated_file_is_named(tmp_path):
    _written(tmp_path / "a.npy", np.ones((10, 8), np.float32), chunk=10)
    data = (tmp_path / "a.npy").read_bytes()
    (tmp_path / "a.npy").write_bytes(data[: len(data) - 3 * 8 * 4])
    with NpyRows(tmp_path / "a.npy") as rows:
        np.testing.assert_array_equal(rows[:7], np.ones((7, 8)))
        with pytest.raises(ValueError, match=r"a\.npy: truncated at row 7"):
            rows[5:10]


def _resident_kb() -> int:
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return sum(int(fields[k].split()[0]) for k in ("RssAnon", "RssFile", "RssShmem"))


def test_streaming_a_large_file_holds_one_batch_not_the_file(tmp_path):
    """What a build's driver relies on: a memory map of the same file grows by its size."""
    batch = np.ones((256, 1024), np.float32)  # 1 MiB
    before = _resident_kb()
    with NpyRowWriter(tmp_path / "big.npy", np.float32, (256 * 96, 1024)) as writer:
        for _ in range(96):
            writer.append(batch)
    with NpyRows(tmp_path / "big.npy") as rows:
        total = sum(float(rows[s : s + 256].sum()) for s in range(0, len(rows), 256))
    streamed = _resident_kb() - before
    assert total == 96 * 256 * 1024
    mapped = np.load(tmp_path / "big.npy", mmap_mode="r")
    before = _resident_kb()
    assert sum(float(mapped[s : s + 256].sum()) for s in range(0, len(mapped), 256)) == total
    grown_by_map = _resident_kb() - before
    assert grown_by_map > 80 * 1024  # the map's pages stay resident (the old build's driver)
    assert streamed < 16 * 1024  # 96 MiB went through; a few batches at most stay


def test_a_file_that_is_not_a_numeric_npy_is_refused(tmp_path):
    (tmp_path / "text.npy").write_bytes(b"not an array at all")
    with pytest.raises(ValueError):
        NpyRows(tmp_path / "text.npy")
    np.save(tmp_path / "fortran.npy", np.asfortranarray(np.ones((4, 3))))
    with pytest.raises(ValueError, match="not a C-ordered numeric array"):
        NpyRows(tmp_path / "fortran.npy")
