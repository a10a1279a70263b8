"""Retrieval fixtures: an index of the shared test corpus, built once in-process."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def local_index(corpus, tmp_path_factory) -> Path:
    from chromaref.retrieval.build import BuildConfig, build_index

    out = tmp_path_factory.mktemp("indexes") / "local"
    build_index(corpus, out, config=BuildConfig(runner="local", shard_size=4))
    return out


@pytest.fixture(scope="session")
def s3_corpus(corpus):
    """The shared corpus uploaded to a real S3 API (moto's server on 127.0.0.1) as a folder
    tree, a Parquet file and a tar shard; yields `uri(key)` for s3:// URIs under the bucket.

    Credentials travel in the URI (any key works on moto), so Ray workers need no environment.
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
        access_key="test",
        secret_key="test",
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
    yield lambda key: f"s3://test:test@photos/{key}?{options}"
    server.stop()
