"""`chromaref eval` writes one grid per photo, even when photos share a stem."""

from __future__ import annotations

import shutil

import pytest
from PIL import Image

from chromaref.evaluation.report import write_report
from chromaref.evaluation.run import evaluate
from chromaref.platform.assets import photo


@pytest.mark.slow
def test_photos_with_the_same_stem_keep_their_own_grids(tmp_path):
    images = tmp_path / "images"
    for folder in ("a", "b"):
        (images / folder).mkdir(parents=True)
    shutil.copy(photo("aloe_l").path, images / "a" / "x.jpg")
    Image.open(photo("coffee").path).save(images / "a" / "x.png")
    shutil.copy(photo("leuven_a").path, images / "b" / "x.jpg")

    result = evaluate(images, methods=("gray",))
    write_report(result, tmp_path / "report", ("gray",))

    assert list(result.grids) == ["x", "a-x.png", "b-x.jpg"]
    grids = sorted(p.name for p in (tmp_path / "report" / "grids").iterdir())
    assert grids == ["a-x.png.jpg", "b-x.jpg.jpg", "x.jpg"]
    html = (tmp_path / "report" / "index.html").read_text()
    assert all(f'src="grids/{name}"' in html for name in grids)
