"""`chromaref video` as a user runs it: given or retrieved references, a folder with a bad
clip, and many clips as Ray tasks on a real local cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from clips import decode_all, pan_frames, write_clip
from typer.testing import CliRunner

from chromaref.cli.main import app
from chromaref.platform.video.io import probe_video

runner = CliRunner()
CHROMAREF = str(Path(sys.executable).parent / "chromaref")


@pytest.fixture(scope="module")
def clips_dir(photo_rgb, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    write_clip(folder / "street.mp4", pan_frames(photo_rgb("astronaut"), 6, (160, 120)))
    write_clip(folder / "cafe.mp4", pan_frames(photo_rgb("coffee"), 5, (160, 120)), audio=True)
    return folder


@pytest.fixture(scope="module")
def reference(photo_rgb, tmp_path_factory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("refs") / "coffee.jpg"
    Image.fromarray(photo_rgb("coffee")).save(path)
    return path


@pytest.mark.slow
def test_one_clip_one_video_per_reference(clips_dir, reference, photo_rgb, tmp_path):
    second = tmp_path / "astro.png"
    from PIL import Image

    Image.fromarray(photo_rgb("astronaut")).save(second)
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["video", str(clips_dir / "cafe.mp4"), "-r", str(reference), "-r", str(second),
         "--out", str(out), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = [out / "cafe__ref-coffee.mp4", out / "cafe__ref-astro.mp4"]
    assert [Path(line) for line in result.stdout.split()[-2:]] == expected
    for path in expected:
        assert len(decode_all(path)[0]) == 5
    assert "5 frames in" in result.output


@pytest.mark.slow
def test_auto_retrieves_references_per_scene(clips_dir, corpus, tmp_path):
    from chromaref.retrieval.build import BuildConfig, build_index

    index = tmp_path / "index"
    build_index(corpus, index, config=BuildConfig(runner="local"))
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["video", str(clips_dir / "street.mp4"), "--auto", "--top", "2", "--index", str(index),
         "--out", str(out), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["street__auto1.mp4", "street__auto2.mp4"]


@pytest.mark.slow
def test_a_bad_clip_in_a_folder_is_skipped_and_the_rest_is_done(clips_dir, reference, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "broken.mp4").write_bytes(b"\x00" * 4096)
    (folder / "street.mp4").write_bytes((clips_dir / "street.mp4").read_bytes())
    out = tmp_path / "out"
    result = runner.invoke(app, ["video", str(folder), "-r", str(reference), "--out", str(out)])
    assert result.exit_code == 1
    assert "skipped 1 clip" in result.output
    assert result.output.count("broken.mp4") == 1  # its path once, then why
    assert "Traceback" not in result.output
    assert [p.name for p in out.iterdir()] == ["street__ref-coffee.mp4"]


def test_without_a_reference_or_with_both_it_says_what_to_give(clips_dir, reference, tmp_path):
    cases = {
        "no reference: give one with --reference/-r, or use --auto": [],
        "give references with --reference/-r or use --auto, not both": [
            "--auto", "-r", str(reference)
        ],
    }  # fmt: skip
    for message, extra in cases.items():
        result = runner.invoke(app, ["video", str(clips_dir), *extra, "--out", str(tmp_path)])
        assert result.exit_code == 2 and message in result.output


@pytest.mark.parametrize(
    ("option", "says"),
    [
        (["--max-frames", "0"], "--max-frames"),
        (["--crf", "60"], "--crf"),
        (["--codec", "aac"], "'aac' is an audio codec, not a video one"),
        (["--working-size", "8"], "--working-size: Input should be greater than or equal to 32"),
        (["--method", "reinhard"], "--method must be one of trained, training-free, got reinhard"),
        (["--method", "training-free", "--model", "x.pt"], "--model is for --method trained"),
    ],
)
def test_bad_encoding_options_are_refused_and_write_nothing(
    clips_dir, reference, tmp_path, option, says
):
    out = tmp_path / "out"
    args = ["video", str(clips_dir / "street.mp4"), "-r", str(reference), "--out", str(out)]
    result = runner.invoke(app, [*args, *option])
    assert result.exit_code == 2 and says in result.output, result.output
    assert "Traceback" not in result.output
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.ray
@pytest.mark.integration
@pytest.mark.slow
def test_many_clips_in_pieces_as_ray_tasks_on_a_cluster(clips_dir, reference, tmp_path):
    """Each clip is cut into pieces of ~0.2 s (2-3 tasks each), then joined: every frame, the
    source's timestamps and its audio."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    try:
        out = tmp_path / "out"
        done = subprocess.run(
            [CHROMAREF, "video", str(clips_dir), "-r", str(reference), "--out", str(out),
             "--address", cluster.address, "--chunk-seconds", "0.2"],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        cluster.shutdown()
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "cafe__ref-coffee.mp4",
        "street__ref-coffee.mp4",
    ]
    for name in ("street", "cafe"):
        frames, times = decode_all(out / f"{name}__ref-coffee.mp4")
        assert times == pytest.approx(decode_all(clips_dir / f"{name}.mp4")[1], abs=1e-3)
    assert len(frames) == 5
    assert probe_video(out / "cafe__ref-coffee.mp4").audio_codec == "aac"
    assert "Traceback" not in done.stderr


@pytest.mark.ray
@pytest.mark.integration
@pytest.mark.slow
def test_a_piece_whose_worker_is_killed_runs_again_and_the_video_is_whole(
    photo_rgb, reference, tmp_path
):
    """SIGKILL the worker process of one piece while it runs: Ray runs that piece again and
    the joined video still has every frame at its source time."""
    import os
    import signal
    import time

    from ray.cluster_utils import Cluster

    clip = write_clip(tmp_path / "long.mp4", pan_frames(photo_rgb("astronaut"), 24, (160, 120)))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    killed = None
    try:
        run = subprocess.Popen(
            [CHROMAREF, "video", str(clip), "-r", str(reference), "--out", str(tmp_path / "out"),
             "--address", cluster.address, "--chunk-seconds", "0.5"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while killed is None and run.poll() is None and time.monotonic() < deadline:
            killed = _piece_worker()
            if killed is not None:
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.05)
        _, stderr = run.communicate(timeout=600)
    finally:
        cluster.shutdown()
    assert killed is not None, "no piece was seen running"
    assert run.returncode == 0, stderr
    frames, times = decode_all(tmp_path / "out" / "long__ref-coffee.mp4")
    assert len(frames) == 24 and times == pytest.approx(decode_all(clip)[1], abs=1e-3)


def _piece_worker() -> int | None:
    """The pid of a Ray worker process running a video piece, if one runs now."""
    for entry in Path("/proc").iterdir():
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0]
        except OSError:  # gone, or not a process
            continue
        if title.startswith(b"ray::_colorize_piece"):
            return int(entry.name)
    return None


def test_a_model_is_passed_to_ray_tasks_so_another_folder_opens_it(tmp_path, monkeypatch):
    from chromaref.cli._model import portable_model
    from chromaref.platform.config import MatchingConfig
    from chromaref.platform.errors import WeightsError
    from chromaref.platform.models.colornet import colornet_small

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "models").mkdir()
    colornet_small().save(tmp_path / "models" / "m.pt", matching=MatchingConfig().model_dump())
    assert portable_model(None) == (None, None)
    assert portable_model("models/m.pt") == (str((tmp_path / "models" / "m.pt").resolve()), None)
    store = f"sqlite:///{(tmp_path / 'mlruns.db').resolve()}"  # made absolute for the workers
    with pytest.raises(WeightsError, match=f"runs:/abc/model: no MLflow store at {store}"):
        portable_model("runs:/abc/model")


@pytest.mark.parametrize(
    ("model", "says"),
    [
        ("missing.pt", "missing.pt"),
        ("s3://bucket/m.pt", "--model takes a colornet file, runs:/<run id>/model or"),
    ],
)
def test_a_model_that_cannot_be_opened_is_refused_before_any_work(
    clips_dir, reference, tmp_path, model, says
):
    out = tmp_path / "out"
    args = ["video", str(clips_dir / "street.mp4"), "-r", str(reference), "--out", str(out)]
    result = runner.invoke(app, [*args, "--model", model])
    assert result.exit_code == 2 and says in result.output, result.output
    assert "Traceback" not in result.output and not out.exists()


@pytest.mark.slow
def test_the_method_reaches_the_frames(clips_dir, reference, tmp_path):
    """The same clip and reference, trained (the default) and training-free: different colors."""
    frames = {}
    for method in ("trained", "training-free"):
        out = tmp_path / method
        args = ["video", str(clips_dir / "street.mp4"), "-r", str(reference), "--out", str(out)]
        result = runner.invoke(app, [*args, "--method", method, "--max-frames", "2", "-q"])
        assert result.exit_code == 0, result.output
        [written] = out.glob("street__*.mp4")
        frames[method] = decode_all(written)[0]
    difference = np.abs(frames["trained"][1].astype(int) - frames["training-free"][1]).mean()
    assert difference > 0.5, difference
