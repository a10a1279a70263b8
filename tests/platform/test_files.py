"""Files the project writes: atomic, with the user's umask, whatever their names' length."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from chromaref.platform.files import atomic_write_text, target_mode, umask

# Writes what an index build and a colorize run write, under a given umask, in a new process
# (the umask is process-wide), and prints each path's permission bits.
_WRITER = """
import json, os, stat, sys
from pathlib import Path
import numpy as np
os.umask(int(sys.argv[2], 8))
from chromaref.platform.files import atomic_write_text
from chromaref.platform.images import save_image
root = Path(sys.argv[1])
atomic_write_text(root / "index" / "manifest.json", json.dumps({"count": 1}))
save_image(np.full((8, 8, 3), 128, np.uint8), root / "out" / "sub" / "x__grid.png")
paths = [root / "index", root / "index" / "manifest.json", root / "out", root / "out" / "sub",
         root / "out" / "sub" / "x__grid.png"]
print(json.dumps({p.relative_to(root).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in paths}))
"""


@pytest.mark.parametrize("mask", [0o022, 0o002], ids=["umask-022", "umask-002"])
def test_files_and_folders_get_the_users_umask(tmp_path: Path, mask: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WRITER, str(tmp_path), oct(mask)],
        capture_output=True,
        text=True,
        check=True,
    )
    modes = json.loads(done.stdout)
    file_mode, folder_mode = 0o666 & ~mask, 0o777 & ~mask
    assert modes == {
        "index": folder_mode,
        "index/manifest.json": file_mode,
        "out": folder_mode,
        "out/sub": folder_mode,
        "out/sub/x__grid.png": file_mode,
    }
    assert not list(tmp_path.rglob("*.tmp"))


def test_replacing_a_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text("{}")
    path.chmod(0o640)
    atomic_write_text(path, '{"count": 2}')
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 == target_mode(path)
    assert json.loads(path.read_text()) == {"count": 2}


def test_umask_is_read_without_changing_it() -> None:
    current = os.umask(0o027)
    try:
        assert umask() == 0o027
        assert umask() == 0o027
    finally:
        os.umask(current)


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def test_a_name_at_the_file_systems_limit_is_written(tmp_path: Path) -> None:
    # The temporary file beside it must not be longer than the name itself allows.
    name = "n" * (_name_max(tmp_path) - len(".json")) + ".json"
    atomic_write_text(tmp_path / name, "[]")
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_a_name_over_the_limit_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "old.json").write_text("kept")
    name = "n" * (_name_max(tmp_path) + 1)
    with pytest.raises(OSError) as info:
        atomic_write_text(tmp_path / name, "[]")
    assert info.value.errno == errno.ENAMETOOLONG
    assert [p.name for p in tmp_path.iterdir()] == ["old.json"]  # no temp file left behind
