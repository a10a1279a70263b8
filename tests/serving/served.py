"""What the serving tests share besides fixtures: test settings, deploying an app under a
route prefix, and encoding pictures for upload."""

from __future__ import annotations

import io
import socket
from dataclasses import dataclass

import numpy as np
from PIL import Image

TEST_API_KEY_ENV = "CHROMAREF_TEST_API_KEY"
TEST_API_KEY = "s3cret-test-key"
# Small limits so that the refusals are cheap to provoke; a 128 px working size keeps
# each colorization well under a second on two cores.
BASE_SETTINGS = {
    "working_size": 128,
    "limits": {"max_upload_bytes": 3 << 20, "max_pixels": 1_000_000, "request_timeout_s": 60},
    "colorizer": {"num_cpus": 1, "num_gpus": 0},
    "retriever": {"num_cpus": 0.25, "num_gpus": 0},
}


@dataclass(frozen=True)
class App:
    url: str  # ends with "/"
    name: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def gray_png(rgb: np.ndarray) -> bytes:
    """A color photo turned gray, as an upload."""
    return png_bytes(np.asarray(Image.fromarray(rgb).convert("L").convert("RGB")))


def deploy(base_url: str, name: str, settings: dict) -> App:
    from ray import serve

    from chromaref.serving.app import build

    serve.run(build(settings), name=name, route_prefix=f"/{name}")
    return App(url=f"{base_url}/{name}/", name=name)
