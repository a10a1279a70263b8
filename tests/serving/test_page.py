"""The web page of the app in a real headless Chromium, against the real Ray Serve app."""

from __future__ import annotations

import pytest
from PIL import Image
from served import BASE_SETTINGS, TEST_API_KEY, TEST_API_KEY_ENV, deploy, gray_png, png_bytes

pytestmark = [pytest.mark.ray, pytest.mark.slow]
TIMEOUT_MS = 120_000

# The natural width of every image the locator matches, once the browser decoded it (0: broken).
_DECODED = """images => Promise.all(images.map(img => img.decode().then(
    () => img.naturalWidth, () => 0)))"""


@pytest.fixture(scope="module")
def keyed_app(serve_instance, local_index):
    """The app behind an API key (in the replicas' environment), on a share of the package's
    4 logical CPUs."""
    from ray import serve

    settings = {
        **BASE_SETTINGS,
        "index": str(local_index),
        "api_key_env": TEST_API_KEY_ENV,
        "colorizer": {"num_cpus": 0.5, "num_gpus": 0},
    }
    yield deploy(serve_instance, "page-keyed", settings)
    serve.delete("page-keyed")


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    page.close()


def _upload_gray(page, tmp_path, photo) -> None:
    path = tmp_path / "chelsea.png"
    path.write_bytes(gray_png(photo))
    page.set_input_files("#image-input", path)


def test_a_photo_is_colorized_with_chosen_and_own_references(app, page, photo_rgb, tmp_path):
    photo = photo_rgb("chelsea")
    width = photo.shape[1]
    page.goto(app.url)
    _upload_gray(page, tmp_path, photo)
    thumbs = page.locator("[data-testid=reference-thumb]")
    thumbs.first.wait_for()
    assert thumbs.count() >= 2
    assert all(w > 0 for w in thumbs.locator("img").evaluate_all(_DECODED))
    assert page.locator("#input-preview").evaluate_all(_DECODED) == [width]
    names = [thumbs.nth(i).locator("span").inner_text().split(" · ")[0] for i in (0, 1)]
    for i in (0, 1):
        thumbs.nth(i).click()
    assert thumbs.nth(1).get_attribute("aria-pressed") == "true"
    assert "2 chosen references" in page.locator("#plan").inner_text()

    page.click("#colorize")
    results = page.locator("[data-testid=result-image]")
    results.nth(1).wait_for()
    assert results.count() == 2
    assert results.evaluate_all(_DECODED) == [width, width]
    assert page.locator("#error").is_hidden() and page.locator("#busy").is_hidden()
    captions = page.locator("#results figcaption").all_inner_texts()
    assert len(captions) == 3  # the input, then one per reference, in the chosen order
    assert captions[1].startswith(names[0]) and captions[2].startswith(names[1])

    links = page.locator("[data-testid=result-download]")
    assert links.first.get_attribute("download").startswith("chelsea-colorized-")
    with page.expect_download() as download:
        links.first.click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    with Image.open(saved) as image:
        assert image.format == "PNG" and image.size == (width, photo.shape[0])

    own = tmp_path / "coffee.png"  # beside the two chosen: one result more
    own.write_bytes(png_bytes(photo_rgb("coffee")))
    page.set_input_files("#reference-input", own)
    assert "and 1 of your own" in page.locator("#plan").inner_text()
    page.click("#colorize")
    results.nth(2).wait_for()
    assert results.evaluate_all(_DECODED) == [width] * 3
    captions = page.locator("#results figcaption").all_inner_texts()[1:]
    expected = ["coffee.png", *names]  # the API answers uploaded references first
    assert len(captions) == 3 and all(map(str.startswith, captions, expected)), captions

    shot = tmp_path / "serving_page.png"
    page.screenshot(path=shot, full_page=True)
    assert shot.stat().st_size > 0


def test_the_api_error_is_shown_in_the_page(app, page, tmp_path):
    notes = tmp_path / "notes.png"
    notes.write_bytes(b"not an image at all")
    page.goto(app.url)
    page.set_input_files("#image-input", notes)
    error = page.locator("#error")
    error.wait_for()
    assert error.inner_text().startswith("400: ")
    assert "not a recognised image format" in error.inner_text()
    assert page.locator("[data-testid=reference-thumb]").count() == 0
    assert page.locator("#key-form").is_hidden()


def test_a_401_asks_for_the_key_and_sends_it_afterwards(keyed_app, page, photo_rgb, tmp_path):
    photo = photo_rgb("chelsea")
    page.goto(keyed_app.url)
    _upload_gray(page, tmp_path, photo)
    page.locator("#key-form").wait_for()
    assert page.locator("#error").inner_text() == "401: missing or wrong API key"

    page.fill("#api-key", TEST_API_KEY)
    page.click("#key-form button")
    page.locator("[data-testid=reference-thumb]").first.wait_for()  # the request, retried
    assert page.evaluate("sessionStorage.getItem('chromaref-api-key')") == TEST_API_KEY
    assert page.locator("#error").is_hidden()

    page.click("#colorize")  # nothing chosen: the best retrieved reference
    result = page.locator("[data-testid=result-image]")
    result.wait_for()
    assert result.evaluate_all(_DECODED) == [photo.shape[1]]
