"""Where `colorize` results go: which files are targets, and a name of its own for each result.

A target's results are `<key>__<reference label>.<fmt>` and `<key>__grid.<fmt>` in its folder
under --out (files found in a folder keep their sub-folder; files named on the command line go
to the top), and its debug maps go to `debug/<folder>/<key>__<reference label>/`. The key is the
target's stem. Targets whose keys would clash in one run (`x.png` beside `x.jpg`, `a/photo.png`
and `b/photo.png`, a file named on the command line and one found in a folder) all get the first
longer key that tells them apart: the file name (`x.png`, `x.jpg`), then the name of the folder
the file came from in front (`a-photo.png`), then its position in the run (`photo.png-3`). The
same command line on the same files always gives the same names.
"""

from __future__ import annotations

import errno
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from chromaref.platform.errors import ConfigError, FileError
from chromaref.platform.images import IMAGE_SUFFIXES

# What a run writes into --out, recognised when --out is also an input folder.
_RESULT_NAME = re.compile(r"__(ref\d*-.+|auto\d+-.+|grid)\.(png|jpg)$", re.IGNORECASE)
_DEBUG_FOLDER = "debug"
_DEFAULT_NAME_MAX = 255


@dataclass(frozen=True)
class Target:
    """An image to colorize and where its results go."""

    path: Path
    folder: Path  # its results' sub-folder of --out
    origin: str  # the folder it came from: the input folder named, or the file's own folder
    key: str = ""  # the start of its results' names, set by `discover_targets`

    def result(self, out: Path, label: str, fmt: str) -> Path:
        return out / self.folder / f"{self.key}__{label}.{fmt}"

    def grid(self, out: Path, fmt: str) -> Path:
        return out / self.folder / f"{self.key}__grid.{fmt}"

    def debug_folder(self, out: Path, label: str) -> Path:
        return out / _DEBUG_FOLDER / self.folder / f"{self.key}__{label}"


def discover_targets(inputs: Sequence[Path], out: Path) -> list[Target]:
    """Files as given, folders searched recursively for images (keeping their sub-folders),
    each file once, never earlier results in --out, each with a key no other target has."""
    out_dir = out.resolve()
    targets: dict[Path, Target] = {}
    for item in inputs:
        if not item.is_dir():
            targets.setdefault(item.resolve(), Target(item, Path(), item.resolve().parent.name))
            continue
        root = item.resolve()
        for path in sorted(item.rglob("*")):
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            inside, resolved = path.relative_to(item), path.resolve()
            if not _earlier_result(inside, resolved, root, out_dir):
                targets.setdefault(resolved, Target(path, inside.parent, root.name))
    return _with_keys(list(targets.values()))


def _earlier_result(inside: Path, resolved: Path, root: Path, out_dir: Path) -> bool:
    """True for what a run wrote into --out when --out is the input folder `root` (results by
    their names, and debug/) or a folder inside it (all of it)."""
    if out_dir == root:
        return inside.parts[0] == _DEBUG_FOLDER or bool(_RESULT_NAME.search(inside.name))
    return out_dir.is_relative_to(root) and resolved.is_relative_to(out_dir)


_LEVELS = 4  # stem, file name, origin-file name, file name-position


def _key(target: Target, level: int, position: int) -> str:
    name = target.path.name
    if level == 0:
        return target.path.stem
    if level == 1 or (level == 2 and not target.origin):
        return name
    if level == 2:
        return f"{target.origin}-{name}"
    return f"{name}-{position + 1}"


def _with_keys(targets: list[Target]) -> list[Target]:
    """Each target's shortest key, lengthened together with every target it would clash with
    (compared without case, as on macOS and Windows file systems)."""
    levels = [0] * len(targets)
    while True:
        keys = [_key(t, level, i) for i, (t, level) in enumerate(zip(targets, levels, strict=True))]
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, (target, key) in enumerate(zip(targets, keys, strict=True)):
            groups[(target.folder.as_posix().casefold(), key.casefold())].append(i)
        clashing = [i for g in groups.values() if len(g) > 1 for i in g if levels[i] < _LEVELS - 1]
        if not clashing:
            return [replace(t, key=k) for t, k in zip(targets, keys, strict=True)]
        for i in clashing:
            levels[i] += 1


class OutputClaims:
    """The files a run may write: never an input or a reference, never a file another target
    wrote in this run, never a name longer than the file system takes."""

    def __init__(self, out: Path, protected: Iterable[Path]) -> None:
        self._protected = {p.resolve() for p in protected}
        self._owners: dict[Path, Path] = {}
        try:
            self._name_max = os.pathconf(out, "PC_NAME_MAX")
        except (OSError, ValueError):
            self._name_max = _DEFAULT_NAME_MAX

    def claim(self, target: Target, files: Sequence[Path], folders: Sequence[Path] = ()) -> None:
        """Reserve `files` (and check `folders`' names) for `target`, or raise before any work."""
        for path in [*files, *folders]:
            if any(len(os.fsencode(part)) > self._name_max for part in path.parts):
                raise FileError(
                    target.path,
                    f"its results' names would be longer than this file system allows "
                    f"({self._name_max} bytes); give it a shorter name",
                )
        for path in files:
            resolved = path.resolve()
            if resolved in self._protected:
                raise ConfigError(f"refusing to overwrite input file {path}; choose another --out")
            owner = self._owners.setdefault(resolved, target.path)
            if owner != target.path:
                raise FileError(path, f"already written in this run for {owner}")


def write_error(path: Path, exc: OSError) -> FileError:
    """A failed write of `path` as one line a user can act on."""
    if exc.errno == errno.ENAMETOOLONG:
        return FileError(path, "file name too long for this file system")
    in_the_way = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), None)
    if in_the_way is not None:
        return FileError(path, f"cannot write: {in_the_way} is a file, not a folder")
    if isinstance(exc, PermissionError):
        return FileError(path, "cannot write: permission denied")
    if isinstance(exc, IsADirectoryError):
        return FileError(path, "cannot write: a folder has this name")
    return FileError(path, f"cannot write ({exc.strerror or exc})")
