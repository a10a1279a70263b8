"""A real S3 API for tests: moto's server over HTTP on 127.0.0.1, with the credentials it
accepts in the environment (set before any Ray starts, so that Ray's workers inherit them)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pyarrow.fs as pafs

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


@dataclass(frozen=True)
class S3:
    options: str  # the query string that points pyarrow at the server
    fs: pafs.S3FileSystem

    def uri(self, key: str) -> str:
        return f"s3://{key}?{self.options}"

    def keys(self, prefix: str) -> list[str]:
        """Every object below `prefix` (bucket/key), relative to it, sorted."""
        found = self.fs.get_file_info(
            pafs.FileSelector(prefix, recursive=True, allow_not_found=True)
        )
        return sorted(f.path[len(prefix) + 1 :] for f in found if f.is_file)


@contextmanager
def s3_server(*buckets: str) -> Iterator[S3]:
    """moto's server with `buckets` created; the environment is restored afterwards."""
    from moto.server import ThreadedMotoServer

    saved = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    fs = pafs.S3FileSystem(
        endpoint_override=f"{host}:{port}",
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
    )
    for bucket in buckets:
        fs.create_dir(bucket)
    try:
        yield S3(f"endpoint_override={host}:{port}&scheme=http&region=us-east-1", fs)
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
