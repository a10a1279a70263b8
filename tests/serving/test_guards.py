"""The guards around the application, each on its own real deployment: the request timeout
(504), backpressure (503), the API key (401) and CORS."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from served import BASE_SETTINGS, TEST_API_KEY, TEST_API_KEY_ENV, deploy, gray_png, png_bytes

pytestmark = [pytest.mark.ray, pytest.mark.slow]
TIMEOUT = 120
# Extra apps share the package's 4 logical CPUs with the main one.
SMALL = {"colorizer": {"num_cpus": 0.5, "num_gpus": 0}, "retriever": {"num_cpus": 0.25}}


@pytest.fixture(scope="module")
def deployed(serve_instance, local_index):
    """deployed(name, settings) -> App, removed again at the end of the module."""
    from ray import serve

    apps = {}

    def make(name: str, settings: dict):
        if name not in apps:
            merged = {**BASE_SETTINGS, **SMALL, "index": str(local_index), **settings}
            apps[name] = deploy(serve_instance, name, merged)
        return apps[name]

    yield make
    for name in apps:
        serve.delete(name)


def _colorize(app, image: bytes, headers=None) -> requests.Response:
    return requests.post(
        app.url + "v1/colorize",
        files=[("image", ("t.png", image))],
        headers=headers,
        timeout=TIMEOUT,
    )


def test_a_request_over_the_timeout_is_504_and_does_not_hang(deployed, photo_rgb):
    hasty = deployed("hasty", {"limits": {**BASE_SETTINGS["limits"], "request_timeout_s": 0.05}})
    start = time.monotonic()
    response = _colorize(hasty, gray_png(photo_rgb("astronaut")))
    assert response.status_code == 504, response.text
    assert "longer than 0.05 s" in response.json()["error"]
    assert time.monotonic() - start < 10
    assert requests.get(hasty.url + "healthz", timeout=TIMEOUT).status_code == 200


def test_over_capacity_is_503_with_retry_after(deployed, photo_rgb):
    colorizer = {**SMALL["colorizer"], "max_ongoing_requests": 1, "max_queued_requests": 1}
    busy = deployed("busy", {"colorizer": colorizer})
    image = gray_png(photo_rgb("astronaut"))
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: _colorize(busy, image), range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert 200 in statuses and 503 in statuses, statuses
    assert set(statuses) <= {200, 503}
    refused = next(r for r in responses if r.status_code == 503)
    assert refused.json() == {"error": "the server is at capacity; retry shortly"}
    assert refused.headers["retry-after"] == "1"


def test_the_api_key_guards_every_endpoint_but_health(deployed, photo_rgb):
    keyed = deployed(
        "keyed", {"api_key_env": TEST_API_KEY_ENV, "cors_origins": ["http://allowed.test"]}
    )
    image = png_bytes(photo_rgb("coffee"))
    for path in ("healthz", "readyz", ""):
        assert requests.get(keyed.url + path, timeout=TIMEOUT).status_code == 200
    for headers in (None, {"Authorization": "Bearer wrong"}, {"Authorization": TEST_API_KEY}):
        refused = _colorize(keyed, image, headers)
        assert refused.status_code == 401, refused.text
        assert refused.json() == {"error": "missing or wrong API key"}
        assert refused.headers["www-authenticate"].startswith("Bearer")
    answered = _colorize(keyed, image, {"Authorization": f"Bearer {TEST_API_KEY}"})
    assert answered.status_code == 200, answered.text
    assert len(answered.json()["results"]) == 1


def test_cors_is_off_by_default_and_follows_the_configured_origins(app, deployed):
    keyed = deployed(
        "keyed", {"api_key_env": TEST_API_KEY_ENV, "cors_origins": ["http://allowed.test"]}
    )
    preflight = {
        "Origin": "http://allowed.test",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    allowed = requests.options(keyed.url + "v1/colorize", headers=preflight, timeout=TIMEOUT)
    assert allowed.headers.get("access-control-allow-origin") == "http://allowed.test"
    other = {**preflight, "Origin": "http://elsewhere.test"}
    refused = requests.options(keyed.url + "v1/colorize", headers=other, timeout=TIMEOUT)
    assert "access-control-allow-origin" not in refused.headers
    default = requests.options(app.url + "v1/colorize", headers=preflight, timeout=TIMEOUT)
    assert "access-control-allow-origin" not in default.headers
