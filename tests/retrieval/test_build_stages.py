"""Index builds: per-stage timing in the report and manifest, precision kept with the index,
and JPEGs decoded at the size the thumbnail needs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chromaref.platform.assets import photo
from chromaref.platform.errors import IndexMismatchError
from chromaref.platform.images import load_image
from chromaref.retrieval.build import STAGES, BuildConfig, build_index
from chromaref.retrieval.descriptors import (
    DescriptorConfig,
    DescriptorExtractor,
    luminance_thumbnail,
)
from chromaref.retrieval.index import Index
from chromaref.retrieval.mapper import _decode_one, _draft_rgb


def _jpeg(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92, **options)
    return buffer.getvalue()


def _decode(tmp_path: Path, data: bytes) -> tuple:
    """`_decode_one` of bytes, read from a file as a build reads them."""
    path = tmp_path / "image.jpg"
    path.write_bytes(data)
    return _decode_one(str(path), 224)


def test_manifest_holds_every_stage_and_the_resolved_precision(local_index):
    manifest = json.loads((local_index / "manifest.json").read_text())
    report = manifest["report"]
    assert set(report["stage_seconds"]) == set(STAGES)
    assert all(seconds > 0 for seconds in report["stage_seconds"].values()), report
    assert report["described"] == manifest["count"] + len(manifest["skipped"])
    assert report["images_per_second"] == pytest.approx(report["described"] / report["seconds"])
    precision = manifest["build"]["descriptor"]["precision"]
    assert precision in ("fp32", "bf16") and manifest["model_id"].endswith(f"/{precision}")


def test_an_index_refuses_an_extractor_of_the_other_precision(local_index, lite0):
    built = json.loads((local_index / "manifest.json").read_text())["build"]["descriptor"]
    other = {"fp32": "bf16", "bf16": "fp32"}[built["precision"]]
    config = DescriptorConfig(**{**built, "precision": other})
    extractor = DescriptorExtractor(config, device="cpu", backbone=lite0)
    with pytest.raises(IndexMismatchError, match=f"/{other}"):
        Index.open(local_index, extractor=extractor)
    assert Index.open(local_index).extractor.config.precision == built["precision"]


def test_report_and_its_summary_line(corpus, tmp_path):
    report = build_index(corpus, tmp_path / "index", config=BuildConfig(runner="local"))
    text = report.stages_text()
    assert all(f"{stage} " in text for stage in STAGES), text
    assert report.described == report.count + len(report.skipped)
    # In-process, every stage runs in this one thread: their sum fits in the wall time.
    assert sum(report.stage_seconds.values()) <= report.seconds
    assert report.stage_seconds["infer"] > 0


def test_large_jpegs_decode_at_the_thumbnail_scale(tmp_path):
    rgb = load_image(photo("chelsea").path).rgb
    large = Image.fromarray(rgb).resize((1800, 1200), Image.Resampling.BICUBIC)
    data = _jpeg(large)
    drafted = _draft_rgb(data, 224)
    assert drafted.shape == (300, 450, 3)  # 1/4 scale: the smallest still >= 224 on both sides
    full = luminance_thumbnail(load_image(data).rgb, 224)
    thumbnail, digest, reason, *seconds = _decode(tmp_path, data)
    assert reason == "" and len(digest) == 40 and all(s >= 0 for s in seconds)
    assert np.abs(thumbnail - full).mean() < 0.5  # L in [0, 100]
    # A small JPEG is decoded at full size: exactly what load_image gives.
    small = _jpeg(Image.fromarray(rgb))
    np.testing.assert_array_equal(_draft_rgb(small, 224), load_image(small).rgb)


def test_everything_but_plain_rgb_jpegs_goes_to_the_safe_loader(tmp_path):
    image = Image.fromarray(load_image(photo("coffee").path).rgb)
    rotated = Image.Exif()
    rotated[0x0112] = 6  # EXIF orientation: rotate 90 degrees
    png = io.BytesIO()
    image.save(png, format="PNG")
    for data in (
        _jpeg(image, exif=rotated),
        _jpeg(image.convert("CMYK")),
        _jpeg(image.convert("L")),
        png.getvalue(),
        _jpeg(image)[:5000],  # truncated
    ):
        assert _draft_rgb(data, 224) is None
    turned = _decode(tmp_path, _jpeg(image, exif=rotated))[0]
    upright = luminance_thumbnail(load_image(_jpeg(image, exif=rotated)).rgb, 224)
    np.testing.assert_array_equal(turned, upright)
    assert "truncated" in _decode(tmp_path, _jpeg(image)[:5000])[2]
