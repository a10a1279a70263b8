"""A Colorizer replica killed while requests flow: Serve replaces it, later requests succeed,
and none hangs past the request timeout."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from served import gray_png

pytestmark = [pytest.mark.ray, pytest.mark.slow]
REQUEST_TIMEOUT_S = 60  # the app's limit (served.BASE_SETTINGS)
CLIENT_TIMEOUT_S = REQUEST_TIMEOUT_S + 30


def _replica_actor_name(app_name: str) -> str:
    """Asked from a worker thread: Serve refuses blocking calls on a thread that runs an event
    loop, as the main thread does once the session's Playwright browser has started."""
    from ray import serve

    handle = serve.get_deployment_handle("Colorizer", app_name=app_name)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: handle.ready.remote().result(timeout_s=60)).result()


def test_killing_a_colorizer_replica_loses_no_later_request(app, photo_rgb):
    import ray

    image = gray_png(photo_rgb("coffee"))
    outcomes: list[tuple[float, float, int]] = []  # (sent, seconds, status)
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                status = requests.post(
                    app.url + "v1/colorize",
                    files=[("image", ("c.png", image))],
                    timeout=CLIENT_TIMEOUT_S,
                ).status_code
            except requests.Timeout:
                status = -1  # hung past the client's patience
            outcomes.append((sent, time.monotonic() - sent, status))

    clients = [threading.Thread(target=client) for _ in range(2)]
    for thread in clients:
        thread.start()
    try:
        deadline = time.monotonic() + 120
        while not any(s == 200 for *_, s in outcomes) and time.monotonic() < deadline:
            time.sleep(0.2)
        victim = _replica_actor_name(app.name)
        ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
        killed_at = time.monotonic()
        deadline = killed_at + 150
        while time.monotonic() < deadline:  # until Serve's replacement answers twice
            if sum(1 for sent, _, s in outcomes if sent > killed_at and s == 200) >= 2:
                break
            time.sleep(0.5)
    finally:
        stop.set()
        for thread in clients:
            thread.join(CLIENT_TIMEOUT_S + 10)
    later = [s for sent, _, s in outcomes if sent > killed_at]
    assert later.count(200) >= 2, outcomes
    assert all(seconds <= REQUEST_TIMEOUT_S + 5 for _, seconds, _ in outcomes), outcomes
    assert {s for *_, s in outcomes} <= {200, 503, 504}, outcomes  # retryable, never a hang
    assert _replica_actor_name(app.name) != victim  # a new replica took its place
