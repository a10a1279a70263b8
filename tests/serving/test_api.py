"""The HTTP API of a real Ray Serve application on 127.0.0.1, with real photos."""

from __future__ import annotations

import base64
import io
import json
import time

import numpy as np
import pytest
import requests
from PIL import Image
from served import gray_png, png_bytes

from chromaref.platform.color import lab_image

pytestmark = [pytest.mark.ray, pytest.mark.slow]
TIMEOUT = 120


def _decode(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def _post(app, path: str, files, data=None, **kwargs) -> requests.Response:
    return requests.post(app.url + path, files=files, data=data, timeout=TIMEOUT, **kwargs)


def _error(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]
    return body["error"]


def test_health_and_readiness(app, local_index):
    assert requests.get(app.url + "healthz", timeout=TIMEOUT).json() == {"status": "ok"}
    ready = requests.get(app.url + "readyz", timeout=TIMEOUT)
    assert ready.status_code == 200
    count = json.loads((local_index / "manifest.json").read_text())["count"]
    assert ready.json() == {"status": "ready", "references": count}


def test_colorize_with_an_uploaded_reference_keeps_size_and_luminance(app, photo_rgb):
    target = photo_rgb("chelsea")  # sent in color: only its luminance is used, and kept
    reference = photo_rgb("coffee")
    response = _post(
        app,
        "v1/colorize",
        files=[
            ("image", ("chelsea.png", png_bytes(target))),
            ("reference", ("coffee.png", png_bytes(reference))),
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["results"]) == 1
    result = body["results"][0]
    assert result["format"] == "png" and result["reference"]["id"] == "upload-1"
    assert result["reference"]["score"] is None and result["reference"]["name"] == "coffee.png"
    image = np.asarray(_decode(result["image"]).convert("RGB"))
    assert image.shape == target.shape
    assert (result["width"], result["height"]) == (target.shape[1], target.shape[0])
    l_error = np.abs(lab_image(image)[..., 0] - lab_image(target)[..., 0])
    assert l_error.max() < 1.0  # the target's own luminance, 8-bit rounding only
    assert np.abs(image[..., 0].astype(int) - image[..., 2]).mean() > 2  # colored, not gray
    assert {"decode", "retrieve", "colorize"} <= set(body["seconds"])


def test_colorize_retrieves_references_one_result_each_best_first(app, photo_rgb):
    target = photo_rgb("astronaut")
    response = _post(
        app, "v1/colorize", files=[("image", ("a.png", gray_png(target)))], data={"top": 3}
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 3
    scores = [r["reference"]["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert len({r["reference"]["id"] for r in results}) == 3
    pictures = [np.asarray(_decode(r["image"]).convert("RGB")) for r in results]
    assert all(p.shape == target.shape for p in pictures)
    assert not np.array_equal(pictures[0], pictures[1])  # one result per reference


def test_references_are_ranked_with_thumbnails_and_can_be_chosen_by_id(app, photo_rgb):
    target = gray_png(photo_rgb("coffee"))
    response = _post(app, "v1/references", files=[("image", ("c.png", target))], data={"top": 4})
    assert response.status_code == 200, response.text
    found = response.json()["references"]
    assert len(found) == 4
    assert [f["score"] for f in found] == sorted((f["score"] for f in found), reverse=True)
    for item in found:
        thumb = _decode(item["thumbnail"])
        assert thumb.format == "JPEG" and max(thumb.size) <= 160
    chosen = [found[2]["id"], found[0]["id"]]
    response = _post(
        app,
        "v1/colorize",
        files=[("image", ("c.png", target))],
        data={"reference_id": chosen, "format": "jpeg"},
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["reference"]["id"] for r in results] == chosen
    assert all(_decode(r["image"]).format == "JPEG" for r in results)


def test_openapi_describes_the_endpoints(app):
    schema = requests.get(app.url + "openapi.json", timeout=TIMEOUT).json()
    assert {"/v1/colorize", "/v1/references", "/healthz", "/readyz"} <= set(schema["paths"])
    assert requests.get(app.url + "docs", timeout=TIMEOUT).status_code == 200


@pytest.mark.parametrize(
    ("payload", "status", "fragment"),
    [
        (b"not an image at all", 400, "not a recognised image format"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 400, "c.png"),  # a truncated PNG
    ],
)
def test_unreadable_images_are_400(app, payload, status, fragment):
    response = _post(app, "v1/colorize", files=[("image", ("c.png", payload))])
    assert fragment in _error(response, status)


def test_a_truncated_real_photo_is_400(app, photo_rgb):
    data = png_bytes(photo_rgb("chelsea"))
    response = _post(app, "v1/colorize", files=[("image", ("t.png", data[: len(data) // 2]))])
    _error(response, 400)


def test_limits_are_413(app):
    big = np.zeros((1000, 1200, 3), np.uint8)  # 1.2 MP > the test limit of 1 MP, tiny PNG
    big[..., 0] = 200
    message = _error(_post(app, "v1/colorize", files=[("image", ("b.png", png_bytes(big)))]), 413)
    assert "1200000 pixels" in message
    body = b"\xff" * (4 << 20)  # over the 3 MiB body limit
    assert "limit" in _error(_post(app, "v1/colorize", files=[("image", ("x.png", body))]), 413)
    small = png_bytes(np.full((32, 32, 3), 128, np.uint8))
    many = [("image", ("t.png", small))] + [("reference", (f"r{i}.png", small)) for i in range(5)]
    assert "at most 4" in _error(_post(app, "v1/colorize", files=many), 413)


def test_a_gray_reference_is_422(app, photo_rgb):
    gray = gray_png(photo_rgb("chelsea"))
    response = _post(
        app, "v1/colorize", files=[("image", ("t.png", gray)), ("reference", ("g.png", gray))]
    )
    assert "no color to transfer" in _error(response, 422)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"format": "gif"}, "format"),
        ({"top": 0}, "top"),
        ({"top": 99}, "top"),
        ({"reference_id": "no-such-id"}, "unknown reference id"),
        ({"top": "many"}, "top"),
    ],
)
def test_bad_fields_are_400(app, photo_rgb, data, fragment):
    target = gray_png(photo_rgb("chelsea"))
    response = _post(app, "v1/colorize", files=[("image", ("t.png", target))], data=data)
    assert fragment in _error(response, 400)


def test_missing_image_and_unknown_paths_answer_json(app):
    assert "image" in _error(_post(app, "v1/colorize", files=None, data={"top": 1}), 400)
    _error(requests.get(app.url + "v2/nothing", timeout=TIMEOUT), 404)
    _error(requests.get(app.url + "v1/colorize", timeout=TIMEOUT), 405)


def _metric_lines(text: str, prefix: str, *fragments: str) -> list[str]:
    return [
        line
        for line in text.splitlines()
        if line.startswith(prefix) and all(fragment in line for fragment in fragments)
    ]


def test_request_metrics_reach_prometheus(app):
    import ray

    for _ in range(2):
        requests.get(app.url + "healthz", timeout=TIMEOUT)
    port = next(n["MetricsExportPort"] for n in ray.nodes() if n["Alive"])
    deadline, ours, serves = time.monotonic() + 90, [], []
    while time.monotonic() < deadline and not (ours and serves):  # each exports on its own
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=TIMEOUT).text
        ours = _metric_lines(text, "ray_chromaref_requests", 'endpoint="/healthz"', 'status="200"')
        serves = _metric_lines(text, "ray_serve_", 'route="/main/healthz"')  # Serve's own
        time.sleep(0 if ours and serves else 2)
    assert ours and serves
    assert "ray_chromaref_request_latency_ms_bucket" in text
