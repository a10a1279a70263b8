"""`chromaref eval-video` on a short clip panning across a real photo: both modes and the truth
are scored, and the report, the JSON and the frame strip are written."""

from __future__ import annotations

import json

import pytest
from clips import pan_frames, write_clip
from PIL import Image
from typer.testing import CliRunner

from chromaref.cli.main import app

FRAMES = 5


@pytest.mark.slow
def test_eval_video_scores_both_modes_and_the_truth(photo_rgb, tmp_path):
    clip = write_clip(tmp_path / "pan.mp4", pan_frames(photo_rgb("astronaut"), 8, (192, 144)))
    out = tmp_path / "report"
    args = ["eval-video", str(clip), "--out", str(out), "--max-frames", str(FRAMES)]
    result = CliRunner().invoke(app, [*args, "--samples", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "metrics.json").read_text())
    assert record["frames"] == FRAMES and record["reference"] == "its first frame with color"
    assert record["method"] == "trained" and record["model"]["model"] == "shipped"
    assert len(record["model"]["sha256"]) == 64
    scores = record["scores"]
    assert set(scores) == {"per-frame", "temporal", "truth"}
    for mode in ("per-frame", "temporal"):
        assert scores[mode]["psnr"] > 25  # colored from the clip's own first frame
        assert len(scores[mode]["per_frame"]["psnr"]) == FRAMES
        assert scores[mode]["warp_error"] >= 0 and scores[mode]["cdc"] >= 0
    assert scores["truth"]["warp_error"] < 1.5  # a pan: the true motion is found
    report = (out / "report.md").read_text()
    assert "| temporal |" in report and "strip.jpg" in report
    with Image.open(out / "strip.jpg") as strip:  # 2 sampled frames x 4 pictures
        assert strip.height > 2 * 180 and strip.width > 4 * 180


@pytest.mark.slow
def test_eval_video_with_the_training_free_colorizer_records_no_model(photo_rgb, tmp_path):
    clip = write_clip(tmp_path / "pan.mp4", pan_frames(photo_rgb("coffee"), 3, (128, 96)))
    out = tmp_path / "report"
    args = ["eval-video", str(clip), "--out", str(out), "--method", "training-free"]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "metrics.json").read_text())
    assert record["method"] == "training-free" and record["model"] is None
    assert record["scores"]["per-frame"]["psnr"] > 25


def test_eval_video_needs_two_frames(tmp_path):
    args = ["eval-video", str(tmp_path / "none.mp4"), "--out", str(tmp_path), "--max-frames", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "at least 2" in result.output


def test_a_one_frame_clip_is_refused_and_writes_no_report(photo_rgb, tmp_path):
    clip = write_clip(tmp_path / "one.mp4", pan_frames(photo_rgb("astronaut"), 1, (96, 64)))
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["eval-video", str(clip), "--out", str(out)])
    assert result.exit_code == 2 and "1 frame(s); the video metrics need 2 or more" in result.output
    assert list(out.iterdir()) == []


def test_undefined_metrics_are_written_as_json_null():
    from chromaref.cli.eval_video_cmd import _finite

    record = {"psnr": 31.5, "scores": {"cdc": float("nan"), "per_frame": [1.0, float("inf")]}}
    text = json.dumps(_finite(record))
    assert json.loads(text, parse_constant=pytest.fail) == {
        "psnr": 31.5,
        "scores": {"cdc": None, "per_frame": [1.0, None]},
    }
