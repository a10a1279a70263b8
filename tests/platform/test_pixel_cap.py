"""The loader's pixel limit: decompression bombs refused from the header, before decoding,
and chromaref's limit (CHROMAREF_MAX_PIXELS) in charge of Pillow's own bomb guard."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from image_files import png_with_declared_size, write_image
from PIL import Image, ImageFile

from chromaref.platform.errors import ConfigError, ImageLoadError
from chromaref.platform.images import DEFAULT_MAX_PIXELS, load_image

# --- decompression bombs --------------------------------------------------------------------


def test_bomb_rejected_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_with_declared_size(20_000, 20_000))

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageLoadError) as info:
        load_image(path, max_pixels=10_000_000)
    assert "bomb.png" in str(info.value)
    assert "too large" in info.value.reason or "more than the limit" in info.value.reason

    small = tmp_path / "declared_big.png"
    small.write_bytes(png_with_declared_size(5_000, 5_000))
    with pytest.raises(ImageLoadError) as info:
        load_image(small, max_pixels=1_000_000)
    assert info.value.reason == (
        "image has 25000000 pixels, more than the limit of 1000000 "
        "(set CHROMAREF_MAX_PIXELS to raise it)"
    )


def test_default_limit_above_pillow_threshold(tmp_path: Path) -> None:
    # 12000^2 = 144M: over Pillow's soft threshold (~89M) and over our default limit
    assert Image.MAX_IMAGE_PIXELS < DEFAULT_MAX_PIXELS < 144_000_000
    path = tmp_path / "big.png"
    path.write_bytes(png_with_declared_size(12_000, 12_000))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(
            ImageLoadError, match=f"144000000 pixels, more than the limit of {DEFAULT_MAX_PIXELS}"
        ):
            load_image(path)  # the default limit applies without max_pixels
        # our own, higher limit decides: the header passes, decoding finds the data missing
        with pytest.raises(ImageLoadError, match="truncated or corrupt"):
            load_image(path, max_pixels=200_000_000)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_max_pixels_from_environment(
    tmp_path: Path, chelsea: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_image(Image.fromarray(chelsea), tmp_path / "cat.png", "PNG")
    monkeypatch.setenv("CHROMAREF_MAX_PIXELS", "1000")
    with pytest.raises(ImageLoadError, match="more than the limit of 1000 "):
        load_image(path)
    assert load_image(path, max_pixels=451 * 300).size == (451, 300)  # argument wins
    for value in ("lots", "-5"):  # the variable is named, whatever is wrong with it
        monkeypatch.setenv("CHROMAREF_MAX_PIXELS", value)
        with pytest.raises(ConfigError, match=r"^CHROMAREF_MAX_PIXELS must be a positive integer"):
            load_image(path)
    with pytest.raises(ConfigError, match=r"^max_pixels must be a positive integer, got 0"):
        load_image(path, max_pixels=0)


# Pillow's own guard (Image.MAX_IMAGE_PIXELS: a warning above it, an error above twice it) is
# lowered to this in the tests below, so that the chelsea photo (451x300 = 135,300 pixels) is
# over twice it: a cheap stand-in for a 190-megapixel photo under Pillow's default.
_PILLOW_TEST_GUARD = 10_000
_CAT_PIXELS = 451 * 300


@pytest.fixture
def lowered_pillow_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", _PILLOW_TEST_GUARD)
    filters = list(warnings.filters)
    yield
    assert Image.MAX_IMAGE_PIXELS == _PILLOW_TEST_GUARD  # put back after every load
    assert warnings.filters == filters


def _no_decoding(self: ImageFile.ImageFile) -> None:
    raise AssertionError("pixels were decoded")


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "GIF"])
def test_our_limit_above_pillows_guard_decodes(
    tmp_path: Path,
    chelsea: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
    lowered_pillow_guard: None,
    fmt: str,
) -> None:
    path = write_image(Image.fromarray(chelsea), tmp_path / f"cat.{fmt.lower()}", fmt)
    with open(path, "rb") as fh, pytest.raises(Image.DecompressionBombError):
        Image.open(fh)  # Pillow alone refuses it
    monkeypatch.setenv("CHROMAREF_MAX_PIXELS", str(2 * _CAT_PIXELS))
    loaded = load_image(path)
    assert loaded.size == (451, 300)
    if fmt != "GIF":  # GIF keeps 256 colors
        np.testing.assert_array_equal(loaded.rgb, chelsea)
    assert load_image(path, max_pixels=_CAT_PIXELS).size == (451, 300)  # exactly at the limit


@pytest.mark.parametrize(
    "limit",
    [_CAT_PIXELS - 1, 100_000, 50_000],
    ids=["one-pixel-over", "under-twice-the-limit", "over-twice-the-limit"],
)
def test_over_our_limit_is_refused_from_the_header(
    tmp_path: Path,
    chelsea: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
    lowered_pillow_guard: None,
    limit: int,
) -> None:
    path = write_image(Image.fromarray(chelsea), tmp_path / "cat.png", "PNG")
    monkeypatch.setattr(ImageFile.ImageFile, "load", _no_decoding)
    monkeypatch.setenv("CHROMAREF_MAX_PIXELS", str(limit))
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert info.value.reason == (
        f"image has {_CAT_PIXELS} pixels, more than the limit of {limit} "
        "(set CHROMAREF_MAX_PIXELS to raise it)"
    )


def test_concurrent_loads_each_apply_their_own_limit(
    tmp_path: Path, chelsea: np.ndarray, lowered_pillow_guard: None
) -> None:
    path = write_image(Image.fromarray(chelsea), tmp_path / "cat.tiff", "TIFF")

    def load(limit: int) -> tuple[int, int] | str:
        try:
            return load_image(path, max_pixels=limit).size
        except ImageLoadError as exc:
            return exc.reason

    limits = [10 * _CAT_PIXELS, _CAT_PIXELS - 1, _CAT_PIXELS, 50_000] * 8
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(load, limits))
    for limit, result in zip(limits, results, strict=True):
        if limit >= _CAT_PIXELS:
            assert result == (451, 300), limit
        else:
            assert result == (
                f"image has {_CAT_PIXELS} pixels, more than the limit of {limit} "
                "(set CHROMAREF_MAX_PIXELS to raise it)"
            )


@pytest.mark.slow
def test_environment_limit_above_pillows_default_guard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 190 megapixels of one gray: over twice Pillow's default threshold (~89.5 MP), where Pillow
    # alone raises DecompressionBombError; a ~200 KB file. Decoding it takes ~1.5 GB and 9-20 s.
    width, height = 19_000, 10_000
    assert 2 * Image.MAX_IMAGE_PIXELS < width * height < DEFAULT_MAX_PIXELS * 2
    path = tmp_path / "huge.png"
    Image.new("L", (width, height), 90).save(path)
    monkeypatch.setenv("CHROMAREF_MAX_PIXELS", "200000000")
    loaded = load_image(path)
    assert loaded.size == (width, height) and loaded.rgb[-1, -1].tolist() == [90, 90, 90]
    del loaded
    monkeypatch.setenv("CHROMAREF_MAX_PIXELS", str(width * height - 1))
    with pytest.raises(ImageLoadError, match=f"image has {width * height} pixels, more than"):
        load_image(path)
