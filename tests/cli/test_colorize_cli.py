"""The `chromaref` CLI as a user meets it: results, grids, clear errors, nothing half written."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from chromaref.cli.main import app
from chromaref.platform.assets import photo
from chromaref.platform.color import image_to_tensor, rgb_to_lab

runner = CliRunner()


def _small_copy(name: str, path, size=(160, 120), mode="L"):
    image = Image.open(photo(name).path).convert(mode).resize(size)
    image.save(path)
    return path


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    _small_copy("aloe_l", tmp_path / "in" / "aloe.png")
    _small_copy("leuven_a", tmp_path / "in" / "sub" / "leuven.jpg")
    _small_copy("aloe_r", tmp_path / "ref_aloe.jpg", mode="RGB")
    _small_copy("leuven_b", tmp_path / "ref_leuven.png", mode="RGB")
    return tmp_path


def _invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def _colorize_from_aloe(workdir, target, out):
    """`colorize TARGET -r ref_aloe.jpg --out OUT --quiet`, the run most tests make."""
    return _invoke(
        "colorize", str(target), "-r", str(workdir / "ref_aloe.jpg"), "--out", str(out), "--quiet"
    )


def test_folder_run_with_two_references(workdir):
    out = workdir / "out"
    result = _invoke(
        "colorize",
        str(workdir / "in"),
        "-r",
        str(workdir / "ref_aloe.jpg"),
        "-r",
        str(workdir / "ref_leuven.png"),
        "--out",
        str(out),
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    expected = [
        out / "aloe__ref-ref_aloe.png",
        out / "aloe__ref-ref_leuven.png",
        out / "aloe__grid.png",
        out / "sub" / "leuven__ref-ref_aloe.png",
        out / "sub" / "leuven__grid.png",
    ]
    for path in expected:
        assert path.is_file(), f"missing {path}"
    source = np.asarray(Image.open(workdir / "in" / "aloe.png").convert("RGB"))
    result_rgb = np.asarray(Image.open(out / "aloe__ref-ref_aloe.png"))
    assert result_rgb.shape == source.shape
    l_in = rgb_to_lab(image_to_tensor(source))[0, 0]
    l_out = rgb_to_lab(image_to_tensor(result_rgb))[0, 0]
    assert float((l_in - l_out).abs().max()) < 1.0
    assert result_rgb.std(axis=2).mean() > 2.0  # it has color now
    grid = Image.open(out / "aloe__grid.png")
    assert grid.height > 2 * 120 * 0.9  # one row per reference
    assert not list(out.rglob("*.tmp"))


def test_bad_files_are_skipped_and_summarised(workdir):
    (workdir / "in" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (workdir / "in" / "empty.png").write_bytes(b"")
    good = (workdir / "in" / "aloe.png").read_bytes()
    (workdir / "in" / "truncated.png").write_bytes(good[: len(good) // 2])
    out = workdir / "out"
    result = _colorize_from_aloe(workdir, workdir / "in", out)
    assert result.exit_code == 1
    assert "skipped 3 file(s)" in result.output
    for name in ("broken.jpg", "empty.png", "truncated.png"):
        assert name in result.output
    assert "Traceback" not in result.output
    assert (out / "aloe__ref-ref_aloe.png").is_file()
    assert not (out / "broken__ref-ref_aloe.png").exists()


def test_gray_reference_stops_with_one_clear_line(workdir):
    gray_ref = _small_copy("chelsea", workdir / "gray_ref.png", mode="L")
    result = _invoke(
        "colorize",
        str(workdir / "in" / "aloe.png"),
        "-r",
        str(gray_ref),
        "--out",
        str(workdir / "out"),
    )
    assert result.exit_code == 2
    assert "no color to transfer" in result.output
    assert "Traceback" not in result.output
    assert not (workdir / "out").exists()


def test_missing_reference_and_unknown_method(workdir):
    result = _invoke("colorize", str(workdir / "in"), "-r", str(workdir / "nope.jpg"))
    assert result.exit_code == 2 and "no such file" in result.output
    result = _invoke(
        "colorize", str(workdir / "in"), "-r", str(workdir / "ref_aloe.jpg"), "--method", "magic"
    )
    assert result.exit_code == 2 and "unknown colorizer" in result.output


def test_debug_maps_and_jpg_format(workdir):
    out = workdir / "out"
    result = _invoke(
        "colorize",
        str(workdir / "in" / "aloe.png"),
        "-r",
        str(workdir / "ref_aloe.jpg"),
        "--out",
        str(out),
        "--format",
        "jpg",
        "--debug",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    assert Image.open(out / "aloe__ref-ref_aloe.jpg").format == "JPEG"
    debug = out / "debug" / "aloe__ref-ref_aloe"
    names = {p.stem for p in debug.glob("*.png")}
    assert {"warped_reference", "similarity", "cycle_similarity", "similarity_level1"} <= names
    warped = np.asarray(Image.open(debug / "warped_reference.png"))
    assert warped.std(axis=2).mean() > 2.0  # the warped reference carries the reference's color


def test_refuses_to_overwrite_an_input(workdir):
    target = workdir / "in" / "aloe.png"
    clash = workdir / "in" / "aloe__ref-ref_aloe.png"
    _small_copy("aloe_l", clash)
    before = clash.read_bytes()
    result = _invoke(
        "colorize",
        str(target),
        str(clash),
        "-r",
        str(workdir / "ref_aloe.jpg"),
        "--out",
        str(workdir / "in"),
        "--quiet",
    )
    assert result.exit_code == 1
    assert "refusing to overwrite" in result.output
    assert clash.read_bytes() == before


@pytest.mark.slow
def test_demo_writes_result_and_grid(tmp_path):
    result = _invoke("demo", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    written = [line for line in result.output.splitlines() if line.endswith(".png")]
    assert any("__grid" in line for line in written)
    assert all((tmp_path / line.split("/")[-1]).exists() for line in written)


@pytest.mark.parametrize("command", [[], ["colorize"], ["demo"], ["backbones"]])
def test_help_everywhere(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def _odd_mode_targets(folder):
    """The same real photo stored in the modes users actually have."""
    rgb = Image.open(photo("chelsea").path).convert("RGB").resize((120, 90))
    gray16 = (np.asarray(rgb.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(gray16).save(folder / "gray16.png")
    rgb.convert("CMYK").save(folder / "cmyk.jpg")
    rgb.convert("P").save(folder / "palette.png")
    rgb.convert("RGBA").save(folder / "alpha.png")
    rgb.convert("1").save(folder / "bilevel.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    rgb.save(folder / "rotated.jpg", exif=exif)
    return {
        "gray16": (120, 90),
        "cmyk": (120, 90),
        "palette": (120, 90),
        "alpha": (120, 90),
        "bilevel": (120, 90),
        "rotated": (90, 120),
    }


@pytest.mark.slow
def test_every_image_mode_is_colorized_at_its_displayed_size(workdir):
    folder = workdir / "modes"
    folder.mkdir()
    sizes = _odd_mode_targets(folder)
    out = workdir / "out"
    result = _colorize_from_aloe(workdir, folder, out)
    assert result.exit_code == 0, result.output
    for stem, size in sizes.items():
        assert Image.open(out / f"{stem}__ref-ref_aloe.png").size == size, stem


def test_oversized_and_tiny_images_are_skipped_with_reasons(workdir, monkeypatch):
    monkeypatch.setenv("CHROMAREF_MAX_PIXELS", "10000")
    Image.new("L", (1, 1)).save(workdir / "in" / "dot.png")
    Image.new("L", (200, 200)).save(workdir / "in" / "big.png")
    result = _colorize_from_aloe(workdir, workdir / "in", workdir / "out")
    # The reference itself (160x120) is above the limit: nothing can run.
    assert result.exit_code == 2 and "CHROMAREF_MAX_PIXELS" in result.output
    monkeypatch.setenv("CHROMAREF_MAX_PIXELS", "19200")
    result = _colorize_from_aloe(workdir, workdir / "in", workdir / "out")
    assert result.exit_code == 1
    assert "skipped 2 file(s)" in result.output
    assert "dot.png" in result.output and "big.png" in result.output
    assert (workdir / "out" / "aloe__ref-ref_aloe.png").is_file()
