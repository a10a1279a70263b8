"""Serving fixtures: a real Ray instance and Serve HTTP proxy on 127.0.0.1 per test module,
with the application deployed under a few configurations (one route prefix each).

Module scope, not package scope: tests/ folders are not packages, so a "package" fixture
would live to the end of the session and keep Ray running under later tests."""

from __future__ import annotations

import os

import pytest
from served import BASE_SETTINGS, TEST_API_KEY, TEST_API_KEY_ENV, App, deploy, free_port


@pytest.fixture(scope="module")
def serve_instance():
    """A private Ray (4 logical CPUs on this 2-core machine, so that several small apps fit)
    and Serve's HTTP proxy on a free 127.0.0.1 port; yields the proxy's base URL."""
    import ray
    from ray import serve

    os.environ[TEST_API_KEY_ENV] = TEST_API_KEY  # inherited by Ray's workers
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=4, include_dashboard=False, logging_level="WARNING")
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()
    ray.shutdown()
    os.environ.pop(TEST_API_KEY_ENV, None)


@pytest.fixture(scope="module")
def app(serve_instance, local_index) -> App:
    """The application with the test index and default behaviour."""
    return deploy(serve_instance, "main", {**BASE_SETTINGS, "index": str(local_index)})
