"""`chromaref eval` writes a complete report whose numbers mean what they say."""

from __future__ import annotations

import csv
import json
import re
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from chromaref.cli.main import app
from chromaref.platform.assets import photo
from chromaref.platform.errors import ConfigError

pytestmark = pytest.mark.slow

# ImageNet layout CATEGORY/photo: gives the `same-category` reference
PHOTOS = {"aloe_l": "aloe", "aloe_r": "aloe", "coffee": "city", "leuven_a": "city"}


def _copy_photos(root, layout):
    for name, category in layout.items():
        (root / category).mkdir(parents=True, exist_ok=True)
        shutil.copy(photo(name).path, root / category / f"{name}.jpg")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    images = tmp_path_factory.mktemp("eval-images")
    _copy_photos(images, PHOTOS)
    out = tmp_path_factory.mktemp("eval-report")
    result = CliRunner().invoke(
        app, ["eval", "--images", str(images), "--out", str(out), "-q"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return out


def test_report_files_and_rows(report):
    with open(report / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(PHOTOS) * 4 * 5  # photos x reference kinds x methods
    assert {r["reference"] for r in rows} == {"given", "retrieved", "same-category", "unrelated"}
    assert all(0.0 <= float(r["ssim_ab"]) <= 1.0 for r in rows)
    html = (report / "index.html").read_text()
    for src in re.findall(r'src="([^"]+)"', html):
        assert (report / src).is_file(), src
    assert len(list((report / "grids").glob("*.jpg"))) == len(PHOTOS)


def test_metrics_rank_methods_sensibly(report):
    summary = {
        (r["reference"], r["method"]): r
        for r in json.loads((report / "metrics.json").read_text())["summary"]
    }
    given = summary[("given", "training-free")]
    assert given["psnr"] > summary[("given", "gray")]["psnr"] + 3.0
    assert given["psnr"] > summary[("given", "reinhard")]["psnr"]
    assert summary[("given", "gray")]["colorfulness"] == 0.0
    assert given["top5_agree"] >= summary[("given", "gray")]["top5_agree"]
    # the result uses the reference's colors: closer to it than the gray input is
    assert given["reference_hist_distance"] < summary[("given", "gray")]["reference_hist_distance"]


def test_bad_arguments(tmp_path):
    from chromaref.evaluation.run import evaluate

    with pytest.raises(ConfigError, match="unknown method"):
        evaluate(tmp_path, methods=("magic",))
    with pytest.raises(ConfigError, match="at least 2 color photos"):
        evaluate(tmp_path)


def test_nothing_to_evaluate_is_one_error_before_any_work(tmp_path):
    from PIL import Image

    from chromaref.evaluation.run import evaluate

    with pytest.raises(ConfigError, match="--methods names no method"):
        evaluate(tmp_path, methods=())
    with pytest.raises(ConfigError, match="--limit must be at least 1"):
        evaluate(tmp_path, limit=0)
    for name in ("a", "b"):  # photos, but none with colors to recover
        Image.open(photo("coffee").path).convert("L").save(tmp_path / f"{name}.png")
    with pytest.raises(ConfigError, match=r"no photo of .* could be evaluated \(a.png: already"):
        evaluate(tmp_path, methods=("gray",))
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app, ["eval", "--images", str(tmp_path), "--out", str(out), "--methods", ","]
    )
    assert result.exit_code == 2 and "--methods names no method" in result.output
    assert not out.exists()  # refused before the index build and the report folder


def test_several_references_give_different_results(report):
    diversity = json.loads((report / "metrics.json").read_text())["diversity"]
    assert diversity["gray"] == 0.0
    assert diversity["training-free"] > 1.0


def test_same_category_reference_is_a_sibling_and_needs_categories(tmp_path):
    from chromaref.evaluation.run import evaluate
    from chromaref.platform.images import load_image

    _copy_photos(tmp_path / "labelled", PHOTOS)
    result = evaluate(tmp_path / "labelled", methods=("gray",))
    assert result.kinds == ["given", "same-category", "unrelated"]
    sibling = {"aloe_l": "aloe_r", "aloe_r": "aloe_l", "coffee": "leuven_a", "leuven_a": "coffee"}
    for name, rows in result.grids.items():
        reference = rows[result.kinds.index("same-category")][1]
        other = sibling[name]
        expected = load_image(tmp_path / "labelled" / PHOTOS[other] / f"{other}.jpg").rgb
        assert np.array_equal(reference, expected)
        unrelated = rows[result.kinds.index("unrelated")][1]
        strangers = [n for n, c in PHOTOS.items() if c != PHOTOS[name]]  # another category
        assert any(
            np.array_equal(
                unrelated, load_image(tmp_path / "labelled" / PHOTOS[n] / f"{n}.jpg").rgb
            )
            for n in strangers
        )
    spread = evaluate(tmp_path / "labelled", methods=("gray",), limit=2)
    assert set(spread.grids) == {"aloe_l", "coffee"}  # one per category, not the first two
    # a category with a single photo: no same-category reference for anyone
    _copy_photos(tmp_path / "uneven", {"aloe_l": "aloe", "coffee": "city", "leuven_a": "city"})
    assert evaluate(tmp_path / "uneven", methods=("gray",)).kinds == ["given", "unrelated"]


# Every <img> of the page, decoded by the browser: (src, natural width; 0 when it is broken).
_DECODED_IMAGES = """Promise.all([...document.images].map(img => {
    img.loading = "eager";
    return img.decode().then(() => [img.getAttribute("src"), img.naturalWidth],
                             () => [img.getAttribute("src"), 0]);
}))"""


def test_html_report_shows_its_table_plot_and_grids_in_a_real_browser(report, tmp_path, browser):
    page = browser.new_page()
    page.goto((report / "index.html").as_uri())
    shown = dict(page.evaluate(_DECODED_IMAGES))
    assert "psnr.png" in shown and len(shown) == 1 + len(PHOTOS)
    assert all(width > 100 for width in shown.values()), shown
    rows = page.locator("table").first.locator("tbody tr")
    assert rows.count() == 4 * 5  # reference kinds x methods
    assert "trained" in rows.all_inner_texts()[-1]
    broken = tmp_path / "broken-report"  # the same page with its picture files gone
    shutil.copytree(report, broken)
    shutil.rmtree(broken / "grids")
    page.goto((broken / "index.html").as_uri())
    decoded = dict(page.evaluate(_DECODED_IMAGES))
    assert [src for src, width in decoded.items() if width == 0] == [
        src for src in decoded if src.startswith("grids/")
    ]
    page.close()


def test_retrieved_reference_is_never_the_photo_itself_even_as_a_copy(tmp_path):
    from chromaref.evaluation.run import evaluate, index_retriever
    from chromaref.retrieval.build import BuildConfig, build_index
    from chromaref.retrieval.index import Index

    _copy_photos(tmp_path / "photos", PHOTOS)
    copies = tmp_path / "corpus"  # the same files under other names: the nearest hits
    copies.mkdir()
    for n, path in enumerate(sorted((tmp_path / "photos").rglob("*.jpg"))):
        shutil.copy(path, copies / f"copy_{n}.jpg")
    build_index(copies, tmp_path / "index", config=BuildConfig(runner="local"))
    retrieve = index_retriever(Index.open(tmp_path / "index"))
    result = evaluate(tmp_path / "photos", methods=("gray",), retrieve=retrieve)
    row = result.kinds.index("retrieved")
    for rows in result.grids.values():
        reference, truth = rows[row][1], rows[row][-1]
        assert reference.shape != truth.shape or not np.array_equal(reference, truth)


def test_gray_photos_are_skipped_whole_and_never_used_as_references(tmp_path):
    from PIL import Image

    from chromaref.evaluation.run import evaluate
    from chromaref.platform.color import mean_chroma

    _copy_photos(tmp_path, PHOTOS)
    Image.open(photo("coffee").path).convert("L").save(tmp_path / "city" / "old_print.png")
    result = evaluate(tmp_path, methods=("gray",))
    assert [(p.rsplit("/", 1)[-1], r) for p, r in result.skipped] == [
        ("old_print.png", "already gray: it has no colors to recover")
    ]
    assert len(result.rows) == len(PHOTOS) * len(result.kinds)  # every other photo, whole
    for rows in result.grids.values():
        assert all(mean_chroma(row[1]) > 2.0 for row in rows)  # row[1]: the reference


def test_trained_method_takes_a_model_file_and_model_needs_it(tmp_path):
    from chromaref.platform.config import MatchingConfig
    from chromaref.platform.models.colornet import colornet_small

    images, out = tmp_path / "images", tmp_path / "report"
    _copy_photos(images, PHOTOS)
    model = colornet_small().save(tmp_path / "colornet.pt", matching=MatchingConfig().model_dump())
    args = ["eval", "--images", str(images), "--out", str(out), "-q", "--limit", "1"]
    refused = CliRunner().invoke(app, [*args, "--methods", "gray", "--model", str(model)])
    assert refused.exit_code == 2 and "--methods" in refused.output
    result = CliRunner().invoke(app, [*args, "--methods", "gray,trained", "--model", str(model)])
    assert result.exit_code == 0, result.output
    with open(out / "metrics.csv", newline="") as f:
        methods = {r["method"] for r in csv.DictReader(f)}
    assert methods == {"gray", "trained"}
