"""Retrieval fixtures: an index of the shared test corpus, built once in-process."""

from __future__ import annotations

import os

import pytest

S3_TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


@pytest.fixture(scope="session", autouse=True)
def s3_credentials_in_the_environment():
    """moto's (any) credentials, where users keep theirs: the environment, never the URI
    (`index build` refuses a URI with credentials). Session-wide and set first, so that Ray
    nodes started by any fixture inherit them."""
    saved = {name: os.environ.get(name) for name in S3_TEST_CREDENTIALS}
    os.environ.update(S3_TEST_CREDENTIALS)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def s3_corpus(corpus):
    """The shared corpus uploaded to a real S3 API (moto's server on 127.0.0.1) as a folder
    tree, a Parquet file and a tar shard; yields `uri(key)` for s3:// URIs under the bucket.

    Credentials come from the environment (`s3_credentials_in_the_environment`).
    """
    import io
    import tarfile

    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = f"endpoint_override={host}:{port}&scheme=http&region=us-east-1"
    s3 = pafs.S3FileSystem(
        endpoint_override=f"{host}:{port}",
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
    )
    s3.create_dir("photos")
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    for path in files:
        with s3.open_output_stream(f"photos/tree/{path.relative_to(corpus).as_posix()}") as out:
            out.write(path.read_bytes())
    good = [p for p in files if p.name != "corrupt.jpg"]
    table = pa.table(
        {"image": [p.read_bytes() for p in good], "label": [p.parent.name for p in good]}
    )
    with s3.open_output_stream("photos/parquet/part-0.parquet") as out:
        pq.write_table(table, out)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for p in good:
            archive.add(p, arcname=f"{p.parent.name}/{p.name}")
    with s3.open_output_stream("photos/tar/shard-0.tar") as out:
        out.write(buffer.getvalue())
    yield lambda key: f"s3://photos/{key}?{options}"
    server.stop()
