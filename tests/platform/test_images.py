"""Tests for the safe image loader/saver: every mode, every bad file, atomic saves."""

from __future__ import annotations

import io
import logging
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from image_files import png_bytes, png_with_declared_size, write_image
from PIL import Image, JpegImagePlugin
from skimage import data

from chromaref.platform import images
from chromaref.platform.errors import ConfigError, ImageLoadError
from chromaref.platform.images import (
    MIN_SIDE,
    LoadedImage,
    load_image,
    save_image,
    to_pil_rgb,
)

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


def _mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# --- round trips and color modes ----------------------------------------------------------


def test_rgb_png_round_trip_is_exact(tmp_path: Path, chelsea: np.ndarray) -> None:
    path = write_image(Image.fromarray(chelsea), tmp_path / "cat.png", "PNG")
    loaded = load_image(path)
    assert isinstance(loaded, LoadedImage)
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.shape == chelsea.shape
    np.testing.assert_array_equal(loaded.rgb, chelsea)
    assert loaded.size == (451, 300)
    assert loaded.path == str(path)
    assert loaded.source_mode == "RGB" and loaded.format == "PNG"
    assert loaded.is_grayscale is False


def test_cmyk_jpeg_loads_as_rgb(tmp_path: Path, chelsea: np.ndarray) -> None:
    path = write_image(Image.fromarray(chelsea).convert("CMYK"), tmp_path / "cmyk.jpg", "JPEG")
    loaded = load_image(path)
    assert loaded.source_mode == "CMYK" and loaded.format == "JPEG"
    assert loaded.rgb.shape == chelsea.shape and loaded.size == (451, 300)
    assert _mean_abs_diff(loaded.rgb, chelsea) < 6.0
    assert not loaded.is_grayscale


def test_cmyk_with_unusable_icc_profile_falls_back(
    tmp_path: Path, chelsea: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    img = Image.fromarray(chelsea).convert("CMYK")
    path = write_image(img, tmp_path / "cmyk_icc.jpg", "JPEG", icc_profile=b"not an icc profile")
    with caplog.at_level(logging.WARNING, logger=images.__name__):
        loaded = load_image(path)
    assert _mean_abs_diff(loaded.rgb, chelsea) < 6.0
    assert "ICC profile" in caplog.text


def test_16bit_png_scales_by_true_range(tmp_path: Path) -> None:
    values = np.array([0, 128, 129, 257, 32896, 65278, 65535, 1000], dtype=np.uint16)
    arr = np.tile(values, (8, 1))
    path = write_image(Image.fromarray(arr), tmp_path / "deep.png", "PNG")
    loaded = load_image(path)
    assert loaded.source_mode == "I;16"
    assert loaded.is_grayscale
    np.testing.assert_array_equal(loaded.rgb[0, :, 0], [0, 0, 1, 1, 128, 254, 255, 4])
    np.testing.assert_array_equal(loaded.rgb[..., 0], loaded.rgb[..., 2])


def test_16bit_big_endian_tiff(tmp_path: Path) -> None:
    arr = np.tile(np.array([0, 32896, 65535, 257], dtype=np.uint16), (8, 2))
    img = Image.fromarray(arr.astype(">u2"))
    assert img.mode == "I;16B"
    loaded = load_image(write_image(img, tmp_path / "deep_be.tif", "TIFF"))
    assert loaded.source_mode == "I;16B"
    np.testing.assert_array_equal(loaded.rgb[0, :4, 1], [0, 128, 255, 1])


def test_32bit_int_and_float_gray(tmp_path: Path) -> None:
    ints = np.tile(np.array([0, 32896, 65535, 257], dtype=np.int32), (8, 2))
    path = write_image(Image.fromarray(ints), tmp_path / "i.tif", "TIFF")
    loaded = load_image(path)
    assert loaded.source_mode == "I"
    np.testing.assert_array_equal(loaded.rgb[0, :4, 0], [0, 128, 255, 1])

    floats = np.tile(np.array([0.0, 0.5, 1.0, 0.25], dtype=np.float32), (8, 2))
    path = write_image(Image.fromarray(floats), tmp_path / "f.tif", "TIFF")
    loaded = load_image(path)
    assert loaded.source_mode == "F" and loaded.is_grayscale
    np.testing.assert_array_equal(loaded.rgb[0, :4, 2], [0, 128, 255, 64])


def test_palette_png_with_transparency(tmp_path: Path) -> None:
    img = Image.new("P", (16, 16), 0)
    img.putpalette([*RED, *BLUE, 0, 255, 0] + [0] * (256 * 3 - 9))
    img.paste(1, (8, 0, 16, 16))  # right half blue, left half index 0 (transparent red)
    path = write_image(img, tmp_path / "pal.png", "PNG", transparency=0)
    loaded = load_image(path)
    assert loaded.source_mode == "P"
    assert tuple(loaded.rgb[4, 2]) == WHITE
    assert tuple(loaded.rgb[4, 12]) == BLUE


def test_palette_png_with_partial_alpha(tmp_path: Path) -> None:
    img = Image.new("P", (16, 16), 0)
    img.putpalette([*RED, *BLUE] + [0] * (256 * 3 - 6))
    path = write_image(img, tmp_path / "pal_alpha.png", "PNG", transparency=bytes([128, 255]))
    loaded = load_image(path)
    assert tuple(loaded.rgb[0, 0]) == (255, 127, 127)  # half-transparent red over white


def test_palette_without_transparency(tmp_path: Path) -> None:
    img = Image.new("P", (16, 16), 1)
    img.putpalette([*RED, *BLUE] + [0] * (256 * 3 - 6))
    loaded = load_image(write_image(img, tmp_path / "pal_opaque.png", "PNG"))
    assert tuple(loaded.rgb[3, 3]) == BLUE


def test_rgba_composited_over_white(tmp_path: Path) -> None:
    arr = np.zeros((8, 8, 4), dtype=np.uint8)
    arr[...] = (10, 20, 30, 0)  # fully transparent, colored
    arr[0, 0] = (10, 20, 30, 255)  # opaque
    arr[0, 1] = (0, 0, 0, 128)  # half-transparent black
    path = write_image(Image.fromarray(arr), tmp_path / "rgba.png", "PNG")
    loaded = load_image(path)
    assert loaded.source_mode == "RGBA"
    assert tuple(loaded.rgb[5, 5]) == WHITE
    assert tuple(loaded.rgb[0, 0]) == (10, 20, 30)
    assert tuple(loaded.rgb[0, 1]) == (127, 127, 127)


def test_la_composited_over_white(tmp_path: Path) -> None:
    arr = np.zeros((8, 8, 2), dtype=np.uint8)
    arr[..., 0] = 100
    arr[:4, :, 1] = 255  # top half opaque, bottom half transparent
    path = write_image(Image.fromarray(arr, mode="LA"), tmp_path / "la.png", "PNG")
    loaded = load_image(path)
    assert loaded.source_mode == "LA" and loaded.is_grayscale
    assert tuple(loaded.rgb[0, 0]) == (100, 100, 100)
    assert tuple(loaded.rgb[7, 7]) == WHITE


def test_bilevel_mode_1(tmp_path: Path) -> None:
    img = Image.new("1", (16, 16), 0)
    img.paste(1, (0, 0, 8, 16))
    loaded = load_image(write_image(img, tmp_path / "bw.png", "PNG"))
    assert loaded.source_mode == "1" and loaded.is_grayscale
    assert tuple(loaded.rgb[0, 0]) == WHITE
    assert tuple(loaded.rgb[0, 15]) == (0, 0, 0)
    assert loaded.rgb.shape == (16, 16, 3)


def test_lab_tiff(tmp_path: Path, chelsea: np.ndarray) -> None:
    lab = Image.fromarray(chelsea).convert("LAB")
    loaded = load_image(write_image(lab, tmp_path / "lab.tif", "TIFF"))
    assert loaded.source_mode == "LAB"
    assert _mean_abs_diff(loaded.rgb, chelsea) < 3.0


def test_exif_orientation_6_rotates(tmp_path: Path) -> None:
    arr = np.full((20, 40, 3), 128, dtype=np.uint8)  # stored 40 wide x 20 high
    arr[:6, :6] = RED  # marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = write_image(Image.fromarray(arr), tmp_path / "rot.jpg", "JPEG", exif=exif.tobytes())
    loaded = load_image(path)
    assert loaded.size == (20, 40)
    assert loaded.rgb.shape == (40, 20, 3)
    corner = loaded.rgb[:4, -4:].reshape(-1, 3).mean(axis=0)  # displayed top-right
    assert corner[0] > 200 and corner[1] < 60 and corner[2] < 60
    assert loaded.rgb[:4, :4].reshape(-1, 3).mean(axis=0)[1] > 100  # top-left stays gray


def test_gif_with_two_frames_takes_first(tmp_path: Path) -> None:
    first, second = Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)
    path = tmp_path / "anim.gif"
    first.save(path, format="GIF", save_all=True, append_images=[second])
    with Image.open(path) as check:
        assert check.n_frames == 2
    loaded = load_image(path)
    assert loaded.format == "GIF"
    assert tuple(loaded.rgb[8, 8]) == RED


def test_multipage_tiff_takes_first(tmp_path: Path) -> None:
    first, second = Image.new("RGB", (16, 16), BLUE), Image.new("RGB", (16, 16), RED)
    path = tmp_path / "pages.tif"
    first.save(path, format="TIFF", save_all=True, append_images=[second])
    assert tuple(load_image(path).rgb[0, 0]) == BLUE


# --- sources --------------------------------------------------------------------------------


def test_load_from_bytes_and_file_objects(tmp_path: Path, chelsea: np.ndarray) -> None:
    payload = png_bytes(Image.fromarray(chelsea))
    from_bytes = load_image(payload)
    np.testing.assert_array_equal(from_bytes.rgb, chelsea)
    assert from_bytes.path is None and from_bytes.format == "PNG"

    np.testing.assert_array_equal(load_image(io.BytesIO(payload)).rgb, chelsea)

    path = tmp_path / "cat.png"
    path.write_bytes(payload)
    with open(path, "rb") as fh:
        np.testing.assert_array_equal(load_image(fh).rgb, chelsea)
        assert not fh.closed  # the caller's handle is the caller's to close

    class OneShot(io.RawIOBase):
        """A non-seekable stream, like a socket or an HTTP body."""

        def __init__(self, data: bytes) -> None:
            self._buf = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray) -> int:  # type: ignore[override]
            chunk = self._buf.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    np.testing.assert_array_equal(load_image(OneShot(payload)).rgb, chelsea)


def test_bytes_errors_use_given_name() -> None:
    with pytest.raises(ImageLoadError) as info:
        load_image(b"hello, not an image at all", name="upload.png")
    assert info.value.path == "upload.png"
    assert "upload.png" in str(info.value) and "not a recognised image format" in str(info.value)
    with pytest.raises(ImageLoadError, match=r"empty \(0 bytes\)"):
        load_image(b"", name="empty-upload")
    with pytest.raises(ImageLoadError, match=r"empty \(0 bytes\)"):
        load_image(io.BytesIO(b""))


def test_rejects_unsupported_source_type() -> None:
    with pytest.raises(TypeError):
        load_image(12345)  # type: ignore[arg-type]


# --- bad files ------------------------------------------------------------------------------


def test_truncated_jpeg_names_the_file(tmp_path: Path, chelsea: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(chelsea).save(buf, format="JPEG")
    path = tmp_path / "half_cat.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with Image.open(path) as header_only:  # the header is whole: only full decoding finds the cut
        assert header_only.size == (451, 300)
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert "half_cat.jpg" in str(info.value)
    assert "truncated or corrupt" in info.value.reason


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.touch()
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert info.value.reason == "file is empty (0 bytes)"
    assert "empty.png" in str(info.value)


def test_random_bytes_are_not_an_image(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    path = tmp_path / "noise.jpg"
    path.write_bytes(noise)
    with pytest.raises(ImageLoadError, match=r"not a recognised image format$"):
        load_image(path)
    (tmp_path / "clip.MP4").write_bytes(noise)  # a video given as an image: say what to use
    with pytest.raises(ImageLoadError, match="format; a video is colorized by `chromaref video`"):
        load_image(tmp_path / "clip.MP4")


def test_eps_is_never_opened(tmp_path: Path) -> None:
    path = tmp_path / "drawing.eps"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\nshowpage\n")
    with pytest.raises(ImageLoadError, match="not a recognised image format"):
        load_image(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError) as info:
        load_image(tmp_path / "nope.png")
    assert info.value.reason == "no such file"
    assert "nope.png" in str(info.value)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="is a directory"):
        load_image(tmp_path)


def test_tiny_image_rejected(tmp_path: Path) -> None:
    path = write_image(Image.new("RGB", (1, 1), RED), tmp_path / "dot.png", "PNG")
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert "1x1" in info.value.reason and f"at least {MIN_SIDE}" in info.value.reason
    ok = write_image(Image.new("RGB", (MIN_SIDE, MIN_SIDE), RED), tmp_path / "ok.png", "PNG")
    assert load_image(ok).size == (MIN_SIDE, MIN_SIDE)


def test_file_handles_closed_after_failures(tmp_path: Path, chelsea: np.ndarray) -> None:
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("needs /proc")
    buf = io.BytesIO()
    Image.fromarray(chelsea).save(buf, format="JPEG")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(buf.getvalue()[:5000])
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_with_declared_size(5000, 5000))
    before = len(list(fd_dir.iterdir()))
    for _ in range(5):
        for path, kwargs in ((bad, {}), (bomb, {"max_pixels": 1000})):
            with pytest.raises(ImageLoadError):
                load_image(path, **kwargs)
    assert len(list(fd_dir.iterdir())) == before


# --- grayscale detection --------------------------------------------------------------------


def test_is_grayscale(tmp_path: Path, chelsea: np.ndarray) -> None:
    gray = (chelsea.mean(axis=2)).astype(np.uint8)
    assert load_image(write_image(Image.fromarray(gray), tmp_path / "g.png", "PNG")).is_grayscale

    noise = np.random.default_rng(1).integers(0, 3, size=chelsea.shape)  # channels within 2
    rgb_gray = np.clip(gray[..., None].astype(int) + noise, 0, 255).astype(np.uint8)
    loaded = load_image(write_image(Image.fromarray(rgb_gray), tmp_path / "rgb_gray.png", "PNG"))
    assert loaded.source_mode == "RGB" and loaded.is_grayscale

    almost = rgb_gray.copy()
    almost[100, 100] = (0, 200, 0)  # one colored pixel is color
    assert not load_image(
        write_image(Image.fromarray(almost), tmp_path / "a.png", "PNG")
    ).is_grayscale

    assert not load_image(
        write_image(Image.fromarray(chelsea), tmp_path / "c.png", "PNG")
    ).is_grayscale
    astronaut = data.astronaut()
    path = write_image(Image.fromarray(astronaut), tmp_path / "astro.jpg", "JPEG")
    assert not load_image(path).is_grayscale


# --- saving ---------------------------------------------------------------------------------


def test_to_pil_rgb(chelsea: np.ndarray) -> None:
    img = to_pil_rgb(chelsea)
    assert img.mode == "RGB" and img.size == (451, 300)
    np.testing.assert_array_equal(np.asarray(img), chelsea)
    with pytest.raises(ConfigError, match="uint8"):
        to_pil_rgb(chelsea.astype(np.float32))
    with pytest.raises(ConfigError, match="shape"):
        to_pil_rgb(chelsea[..., 0])


def test_save_png_round_trip(tmp_path: Path, chelsea: np.ndarray) -> None:
    out = save_image(chelsea, tmp_path / "nested" / "dir" / "cat.PNG")
    assert out == tmp_path / "nested" / "dir" / "cat.PNG" and out.is_file()
    np.testing.assert_array_equal(load_image(out).rgb, chelsea)
    assert load_image(out).format == "PNG"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask


def test_save_jpeg_round_trip(tmp_path: Path, chelsea: np.ndarray) -> None:
    out = save_image(chelsea, tmp_path / "cat.jpg")
    loaded = load_image(out)
    assert loaded.format == "JPEG" and loaded.size == (451, 300)
    assert _mean_abs_diff(loaded.rgb, chelsea) < 3.0
    with Image.open(out) as img:
        assert JpegImagePlugin.get_sampling(img) == 0  # 4:4:4, chroma not subsampled
    low = save_image(chelsea, tmp_path / "cat_output", format="JPEG", quality=20)
    assert load_image(low).format == "JPEG"
    assert low.stat().st_size < out.stat().st_size


def test_save_unknown_format_is_config_error(tmp_path: Path, chelsea: np.ndarray) -> None:
    with pytest.raises(ConfigError, match="png or jpg"):
        save_image(chelsea, tmp_path / "cat.bmp")
    with pytest.raises(ConfigError, match="png or jpg"):
        save_image(chelsea, tmp_path / "cat.png", format="webp")
    with pytest.raises(ConfigError):
        save_image(chelsea, tmp_path / "cat.jpg", quality=0)
    assert list(tmp_path.iterdir()) == []


def test_save_invalid_format_keeps_existing_file(tmp_path: Path, chelsea: np.ndarray) -> None:
    target = tmp_path / "result.png"
    save_image(chelsea, target)
    before = target.read_bytes()
    with pytest.raises(ConfigError):
        save_image(chelsea[::-1], target, format="tiff")
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["result.png"]


def test_failed_encode_leaves_no_partial_file(
    tmp_path: Path, chelsea: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "result.jpg"
    save_image(chelsea, target)
    before = target.read_bytes()

    def broken_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        fp.write(b"\xff\xd8 half an image")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_image(chelsea[::-1], target)
    with pytest.raises(OSError, match="disk full"):
        save_image(chelsea, tmp_path / "fresh.png")
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["result.jpg"]
