"""`chromaref colorize` results: a file of their own for every target, never an earlier result
colorized again, and one unwritable file never stops the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from chromaref.cli._outputs import discover_targets
from chromaref.cli.main import app
from chromaref.platform.assets import photo
from chromaref.platform.color import image_to_tensor, rgb_to_lab
from chromaref.platform.images import load_image

runner = CliRunner()


def _gray_copy(name: str, path: Path, mode: str = "L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.open(photo(name).path).convert(mode).resize((96, 72)).save(path)
    return path


@pytest.fixture
def ref(tmp_path: Path) -> Path:
    return _gray_copy("aloe_r", tmp_path / "ref_aloe.jpg", mode="RGB")


def _colorize(ref: Path, out: Path, *inputs: Path, debug: bool = False):
    args = ["colorize", *map(str, inputs), "-r", str(ref), "--out", str(out), "--quiet"]
    return runner.invoke(app, args + (["--debug"] if debug else []), catch_exceptions=False)


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _printed_paths(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.endswith((".png", ".jpg"))]


def _same_luminance(result: Path, source: Path) -> bool:
    l_out = rgb_to_lab(image_to_tensor(load_image(result).rgb))[0, 0]
    l_in = rgb_to_lab(image_to_tensor(load_image(source).rgb))[0, 0]
    return float((l_in - l_out).abs().max()) < 1.0


# --- names ----------------------------------------------------------------------------------


def _touch(*paths: Path) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def test_clashing_names_get_longer_keys_together(tmp_path: Path) -> None:
    t = tmp_path
    _touch(t / "in" / "x.png", t / "in" / "x.jpg", t / "in" / "X.gif", t / "in" / "photo.jpg")
    _touch(t / "in" / "sub" / "x.png", t / "in" / "notes.txt")
    _touch(t / "a" / "photo.png", t / "b" / "photo.png")
    _touch(t / "c" / "photos" / "y.png", t / "d" / "photos" / "y.png")
    inputs = [t / "in", t / "a" / "photo.png", t / "b" / "photo.png", t / "in" / "x.png"]
    inputs += [t / "c" / "photos", t / "d" / "photos"]

    targets = discover_targets(inputs, t / "out")

    keys = {p.path.relative_to(t).as_posix(): (p.folder.as_posix(), p.key) for p in targets}
    assert keys == {
        "in/X.gif": (".", "X.gif"),  # clashes with x.* wherever case is ignored
        "in/photo.jpg": (".", "photo.jpg"),  # clashes with the photo.png files named
        "in/sub/x.png": ("sub", "x"),  # its own folder under --out: no clash
        "in/x.jpg": (".", "x.jpg"),
        "in/x.png": (".", "x.png"),  # named twice: colorized once
        "a/photo.png": (".", "a-photo.png"),  # same file name: its folder tells them apart
        "b/photo.png": (".", "b-photo.png"),
        "c/photos/y.png": (".", "y.png-8"),  # same folder name too: position in the run
        "d/photos/y.png": (".", "y.png-9"),
    }
    assert [t.key for t in discover_targets(inputs, t / "out")] == [t.key for t in targets]


def test_earlier_results_in_out_are_not_targets(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    _touch(folder / "a.png", folder / "results" / "a__grid.png", folder / "b__notes.png")
    _touch(folder / "a__ref-ref_x.png", folder / "a__auto1-y.jpg", folder / "a__grid.png")
    _touch(folder / "debug" / "a__ref-ref_x" / "similarity.png")

    def names(out: Path) -> set[str]:
        return {t.path.relative_to(folder).as_posix() for t in discover_targets([folder], out)}

    everything = _files(folder)
    assert names(tmp_path / "elsewhere") == everything
    assert names(folder / "results") == everything - {"results/a__grid.png"}
    assert names(folder) == {"a.png", "b__notes.png"}  # results are named so in sub-folders too


# --- runs -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_same_named_targets_get_their_own_results(tmp_path: Path, ref: Path) -> None:
    x_png = _gray_copy("aloe_l", tmp_path / "in" / "x.png")
    x_jpg = _gray_copy("leuven_a", tmp_path / "in" / "x.jpg")
    other = _gray_copy("leuven_b", tmp_path / "a" / "x.png")
    out = tmp_path / "out"

    result = _colorize(ref, out, tmp_path / "in", other, x_png, debug=True)

    assert result.exit_code == 0, result.output
    written = _files(out)
    printed = _printed_paths(result.output)
    assert len(printed) == len(set(printed)) == len(written)
    assert f"colorized 3/3 image(s): {len(written)} file(s)" in result.output
    results = {name for name in written if "/" not in name}
    assert results == {
        f"{key}__{kind}.png"
        for key in ("in-x.png", "a-x.png", "x.jpg")
        for kind in ("ref-ref_aloe", "grid")
    }
    debug = {name.split("/")[1] for name in written if name.startswith("debug/")}
    assert debug == {"in-x.png__ref-ref_aloe", "a-x.png__ref-ref_aloe", "x.jpg__ref-ref_aloe"}
    for key, source in (("in-x.png", x_png), ("a-x.png", other), ("x.jpg", x_jpg)):
        assert _same_luminance(out / f"{key}__ref-ref_aloe.png", source), key
        assert f"{source} shares its name with another input" in result.output
    assert "Traceback" not in result.output

    again = _colorize(ref, out, tmp_path / "in", other, x_png, debug=True)
    assert again.exit_code == 0, again.output
    assert _files(out) == written  # the same names on every run


@pytest.mark.parametrize("where", ["inside", "same"], ids=["out-inside-input", "out-is-input"])
@pytest.mark.slow
def test_a_rerun_does_not_colorize_earlier_results(tmp_path: Path, ref: Path, where: str) -> None:
    folder = tmp_path / "in"
    _gray_copy("aloe_l", folder / "aloe.png")
    _gray_copy("leuven_a", folder / "sub" / "leuven.jpg")
    out = folder / "results" if where == "inside" else folder

    first = _colorize(ref, out, folder, debug=True)
    assert first.exit_code == 0, first.output
    after_first = _files(folder)
    second = _colorize(ref, out, folder, debug=True)

    assert second.exit_code == 0, second.output
    assert "colorized 2/2 image(s)" in first.output and "colorized 2/2 image(s)" in second.output
    assert _files(folder) == after_first
    assert not [name for name in after_first if name.count("__") > 1]


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _break(kind: str, tmp_path: Path, out: Path) -> tuple[str, str]:
    """Make one target's results unwritable in a real way; returns (its input name, reason)."""
    if kind == "long-name":  # a legal input name whose results' names are not
        name = "n" * (_name_max(tmp_path) - len(".png")) + ".png"
        _gray_copy("leuven_a", tmp_path / "in" / name)
        return name, "names would be longer than this file system allows"
    _gray_copy("leuven_a", tmp_path / "in" / "sub" / "leuven.jpg")
    if kind == "file-for-folder":
        out.mkdir()
        (out / "sub").write_bytes(b"not a folder")
        return "leuven.jpg", "is a file, not a folder"
    if kind == "folder-for-file":
        (out / "sub" / "leuven__grid.png").mkdir(parents=True)
        return "leuven.jpg", "a folder has this name"
    (out / "sub").mkdir(parents=True)
    (out / "sub").chmod(0o555)
    return "leuven.jpg", "permission denied"


@pytest.mark.parametrize(
    "kind", ["long-name", "file-for-folder", "folder-for-file", "read-only-folder"]
)
def test_an_unwritable_result_skips_only_its_target(tmp_path: Path, ref: Path, kind: str) -> None:
    if kind == "read-only-folder" and os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; the other kinds fail for root too")
    _gray_copy("aloe_l", tmp_path / "in" / "aloe.png")
    out = tmp_path / "out"
    name, reason = _break(kind, tmp_path, out)

    result = _colorize(ref, out, tmp_path / "in")

    assert result.exit_code == 1, result.output
    assert "skipped 1 file(s)" in result.output
    assert len([ln for ln in result.output.splitlines() if name in ln and reason in ln]) == 1
    assert (out / "aloe__ref-ref_aloe.png").is_file() and (out / "aloe__grid.png").is_file()
    written = _printed_paths(result.output)
    assert {Path(p).resolve() for p in written} == {
        p.resolve() for p in out.rglob("*") if p.is_file() and p.suffix == ".png"
    }
    assert f"colorized 1/2 image(s): {len(written)} file(s)" in result.output
    assert "Traceback" not in result.output
    assert not list(out.rglob("*.tmp"))


@pytest.mark.parametrize("command", ["colorize", "demo"])
def test_an_unwritable_out_stops_before_any_work(tmp_path: Path, ref: Path, command: str) -> None:
    _gray_copy("aloe_l", tmp_path / "in" / "aloe.png")
    out = tmp_path / "out"
    out.write_bytes(b"a file, not a folder")

    if command == "demo":
        result = runner.invoke(app, ["demo", "--out", str(out)], catch_exceptions=False)
    else:
        result = _colorize(ref, out, tmp_path / "in")

    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {out}: cannot write results here ({out} is a file, not a folder)"
    ]
    assert out.read_bytes() == b"a file, not a folder"


@pytest.mark.parametrize("command", ["video", "eval", "eval-video"])
def test_every_report_command_refuses_a_file_as_out_before_any_work(
    tmp_path: Path, ref: Path, command: str
) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"never read: --out is checked first")
    blocker = tmp_path / "taken"
    blocker.write_bytes(b"a file, not a folder")
    out = blocker / "report"  # a file in the way one level up
    arguments = {
        "video": ["video", str(clip), "-r", str(ref)],
        "eval": ["eval", "--images", str(tmp_path)],
        "eval-video": ["eval-video", str(clip)],
    }[command]
    result = runner.invoke(app, [*arguments, "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {out}: cannot write results here ({blocker} is a file, not a folder)"
    ]
    assert blocker.read_bytes() == b"a file, not a folder"


def test_an_internal_error_is_one_line_and_verbose_shows_its_traceback(tmp_path, monkeypatch):
    import chromaref.evaluation.run

    def broken(*_args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(chromaref.evaluation.run, "check_request", broken)
    args = ["eval", "--images", str(tmp_path), "--out", str(tmp_path / "out")]
    quiet = runner.invoke(app, args)
    assert quiet.exit_code == 3
    assert quiet.output.strip().splitlines() == [
        "internal error: RuntimeError: a bug (rerun with --verbose for details and please "
        "report it)"
    ]
    verbose = runner.invoke(app, [*args, "--verbose"])
    assert verbose.exit_code == 3
    assert "Traceback (most recent call last)" in verbose.output
    assert 'raise RuntimeError("a bug")' in verbose.output


def test_a_skipped_target_gets_no_renaming_note(tmp_path: Path, ref: Path) -> None:
    good = _gray_copy("aloe_l", tmp_path / "in" / "x.png")
    broken = tmp_path / "in" / "x.jpg"
    broken.write_bytes(b"not a jpeg")
    result = _colorize(ref, tmp_path / "out", tmp_path / "in")
    assert result.exit_code == 1  # one target skipped
    assert f"{good} shares its name with another input" in result.output
    assert f"{broken} shares its name" not in result.output
    assert f"{broken}: not a recognised image format" in result.output
