"""`chromaref video` with clips, references and outputs in an object store (moto's S3 server
on 127.0.0.1): the process that colorizes a clip reads it from the store and uploads the
result, in the CLI's process and as Ray tasks on a real local cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from clips import decode_all, pan_frames, write_clip
from PIL import Image
from s3server import s3_server
from typer.testing import CliRunner

from chromaref.cli.main import app

runner = CliRunner()
CHROMAREF = str(Path(sys.executable).parent / "chromaref")


@pytest.fixture(scope="module")
def s3(photo_rgb, tmp_path_factory):
    """A store with two clips under `media/clips/` and a reference at `media/refs/coffee.jpg`."""
    local = tmp_path_factory.mktemp("store_inputs")
    write_clip(local / "street.mp4", pan_frames(photo_rgb("astronaut"), 4, (160, 120)))
    write_clip(local / "cafe.mp4", pan_frames(photo_rgb("coffee"), 3, (160, 120)), audio=True)
    Image.fromarray(photo_rgb("coffee")).save(local / "coffee.jpg")
    with s3_server("media", "results") as server:
        for name in ("street.mp4", "cafe.mp4"):
            with server.fs.open_output_stream(f"media/clips/{name}") as out:
                out.write((local / name).read_bytes())
        with server.fs.open_output_stream("media/refs/coffee.jpg") as out:
            out.write((local / "coffee.jpg").read_bytes())
        yield server


def _frames_of(s3, key: str, scratch: Path) -> int:
    local = scratch / Path(key).name
    with s3.fs.open_input_stream(key) as stream:
        local.write_bytes(stream.read())
    return len(decode_all(local)[0])


@pytest.mark.slow
def test_a_stored_clip_is_colorized_into_the_store(s3, tmp_path):
    result = runner.invoke(
        app,
        ["video", s3.uri("media/clips/cafe.mp4"), "-r", s3.uri("media/refs/coffee.jpg"),
         "--out", s3.uri("results/one"), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.split()[-1] == "s3://results/one/cafe__ref-coffee.mp4"
    assert s3.keys("results/one") == ["cafe__ref-coffee.mp4"]
    assert _frames_of(s3, "results/one/cafe__ref-coffee.mp4", tmp_path) == 3


def test_a_missing_clip_in_the_store_is_one_clear_line(s3, tmp_path):
    result = runner.invoke(
        app,
        ["video", s3.uri("media/clips/nothing.mp4"), "-r", s3.uri("media/refs/coffee.jpg"),
         "--out", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "s3://media/clips/nothing.mp4" in result.output and "no such file" in result.output
    assert "Traceback" not in result.output


def test_a_missing_reference_in_the_store_is_one_clear_line(s3, tmp_path):
    result = runner.invoke(
        app,
        ["video", s3.uri("media/clips/cafe.mp4"), "-r", s3.uri("media/refs/absent.jpg"),
         "--out", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "s3://media/refs/absent.jpg: cannot read it from the store" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.ray
@pytest.mark.integration
@pytest.mark.slow
def test_stored_clips_as_ray_tasks_on_a_cluster(s3, tmp_path):
    """Each clip in pieces of ~0.1 s: every piece reads its span from the store by ranges,
    and the join uploads the output; nothing is written to a disk the driver would share."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    try:
        done = subprocess.run(
            [CHROMAREF, "video", s3.uri("media/clips"), "-r", s3.uri("media/refs/coffee.jpg"),
             "--out", s3.uri("results/batch"), "--address", cluster.address,
             "--chunk-seconds", "0.1"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )  # fmt: skip
    finally:
        cluster.shutdown()
    assert done.returncode == 0, done.stderr
    assert s3.keys("results/batch") == ["cafe__ref-coffee.mp4", "street__ref-coffee.mp4"]
    assert _frames_of(s3, "results/batch/street__ref-coffee.mp4", tmp_path) == 4
    assert list(tmp_path.iterdir()) == [tmp_path / "street__ref-coffee.mp4"]  # ours, just now
    assert "Traceback" not in done.stderr
