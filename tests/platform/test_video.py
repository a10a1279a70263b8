"""Whole clips made from real photos: what a colorized video keeps (frames, timestamps, size,
rotation, audio, luminance), what the temporal mode buys, scene cuts, and bad input."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import numpy as np
import pytest
from clips import PAN_PX, decode_all, pan_frames, write_clip

from chromaref.platform.color import lab_image
from chromaref.platform.config import VideoConfig
from chromaref.platform.errors import ConfigError, UnusableReferenceError
from chromaref.platform.video.clip import colorize_clip, fixed_anchor
from chromaref.platform.video.io import VideoError, VideoWriter, probe_video, read_video

SIZE = (320, 240)
_PIPELINES = {"trained": "pipeline", "training-free": "training_free_pipeline"}  # fixtures


@pytest.fixture(scope="module")
def pan(photo_rgb, tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    """A 12-frame pan across a real photo, with an AAC tone and a 90-degree rotation."""
    frames = pan_frames(photo_rgb("astronaut"), 12, SIZE)
    path = tmp_path_factory.mktemp("clips") / "pan.mp4"
    return write_clip(path, frames, audio=True, rotation=90), frames


def _colorize(pipeline, source, out, reference_rgb, **kwargs):
    reference = pipeline.prepare(reference_rgb, full_l=False)
    return colorize_clip(pipeline, source, [out], fixed_anchor([reference]), **kwargs)


def _audio(path: Path) -> tuple[str, float] | None:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        packets = [p for p in container.demux(stream) if p.pts is not None]
        end = packets[-1].pts + packets[-1].duration
        return stream.codec_context.name, float(end * stream.time_base)


@pytest.mark.slow
def test_a_colorized_clip_keeps_frames_times_size_rotation_audio_and_luminance(
    pipeline, pan, photo_rgb, tmp_path
):
    source, truth = pan
    out = tmp_path / "pan__ref.mp4"
    result = _colorize(pipeline, source, out, photo_rgb("astronaut"))
    assert result.frames == 12 and result.outputs == [out] and result.cuts == []
    frames, times = decode_all(out)
    source_frames, source_times = decode_all(source)
    assert len(frames) == 12 and times == pytest.approx(source_times, abs=1e-3)
    assert frames[0].shape == source_frames[0].shape == (SIZE[1], SIZE[0], 3)
    assert probe_video(out).rotation == 90
    codec, seconds = _audio(out)
    assert codec == "aac" and seconds == pytest.approx(_audio(source)[1], abs=0.05)
    for got, given in zip(frames, source_frames, strict=True):  # H.264 costs a little
        assert np.abs(lab_image(got)[..., 0] - lab_image(given)[..., 0]).mean() < 1.5
    error = np.mean(
        [np.abs(a.astype(float) - b).mean() for a, b in zip(frames, truth, strict=True)]
    )
    gray = np.mean([np.abs(lab_image(t)[..., 1:]).mean() for t in truth])
    assert error < 8 and gray > 5  # the true colors, near enough, and not a gray clip


def _flicker(frames: list[np.ndarray]) -> float:
    """Mean ab change between consecutive frames along the true motion (the pan)."""
    changes = []
    for before, after in itertools.pairwise(frames):
        ab_before, ab_after = lab_image(before)[..., 1:], lab_image(after)[..., 1:]
        changes.append(np.abs(ab_after[:, :-PAN_PX] - ab_before[:, PAN_PX:]).mean())
    return float(np.mean(changes))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["trained", "training-free"])
def test_temporal_mode_flickers_less_than_frame_by_frame(method, request, pan, photo_rgb, tmp_path):
    """With a reference that only partly matches, per-frame colors jump; carried colors hold."""
    pipeline = request.getfixturevalue(_PIPELINES[method])
    assert pipeline.config.colorizer == method
    source, _ = pan
    reference = photo_rgb("coffee")
    flicker = {}
    for temporal in (False, True):
        out = tmp_path / f"temporal-{temporal}.mp4"
        _colorize(pipeline, source, out, reference, config=VideoConfig(temporal=temporal))
        flicker[temporal] = _flicker(decode_all(out)[0])
    assert flicker[True] < 0.8 * flicker[False], flicker


@pytest.mark.slow
@pytest.mark.parametrize("method", ["trained", "training-free"])
def test_with_a_matching_reference_carried_colors_do_not_drift(method, request, pan):
    """Anchored on the clip's own first frame in color, the temporal mode is steadier than
    frame by frame and costs almost no accuracy: colors carried as evidence, not as a result
    smoothed again every frame (which drifted: -1.1 dB on such pans)."""
    from chromaref.platform.video.metrics import evaluate_clip

    pipeline = request.getfixturevalue(_PIPELINES[method])
    source, truth = pan
    key = pipeline.prepare(truth[0], full_l=False)
    scores = evaluate_clip(pipeline, source, key).scores
    temporal, per_frame = scores["temporal"], scores["per-frame"]
    assert temporal["psnr"] > per_frame["psnr"] - 0.3, scores
    assert temporal["warp_error"] < 0.8 * per_frame["warp_error"], scores


@pytest.mark.slow
def test_the_trained_colorizer_corrects_the_carried_colors(pipeline, pan, photo_rgb):
    """A clip's first frame comes out as the image colorizer makes it; later frames differ from
    per-frame ones, as the net reads the carried colors (they are its residual base)."""
    from chromaref.platform.video.temporal import FrameColorizer

    assert pipeline.config.colorizer == "trained"
    reference = pipeline.prepare(photo_rgb("coffee"), full_l=False)
    frames = [pipeline.prepare(rgb) for rgb in decode_all(pan[0])[0][:3]]
    temporal = FrameColorizer(pipeline, reference)
    per_frame = FrameColorizer(pipeline, reference, VideoConfig(temporal=False))
    first = temporal(frames[0])
    assert np.array_equal(first, per_frame(frames[0]))
    image = pipeline.colorize(frames[0], reference).rgb
    assert np.abs(first.astype(int) - image).max() <= 1
    later = [np.abs(temporal(f).astype(int) - per_frame(f)).mean() for f in frames[1:]]
    assert min(later) > 0.05, later


@pytest.mark.slow
def test_a_plain_colornet_colorizes_frames_on_their_own_and_says_so(
    pan, photo_rgb, tmp_path, caplog
):
    """A plain ColorNet reads no base, so no colors are carried to it: the temporal mode is
    per-frame colorization, without the flow's cost, and a warning says so."""
    import logging

    import torch

    from chromaref.platform.config import MatchingConfig, PipelineConfig, TrainedConfig
    from chromaref.platform.models.colornet import colornet_small
    from chromaref.platform.pipeline import ColorizationPipeline
    from chromaref.platform.video.temporal import FrameColorizer

    caplog.set_level(logging.WARNING)
    torch.manual_seed(1)
    path = colornet_small(residual=False).save(
        tmp_path / "plain.pt", matching=MatchingConfig().model_dump()
    )
    config = PipelineConfig(colorizer="trained", trained=TrainedConfig(model=str(path)))
    plain = ColorizationPipeline(config, device="cpu")
    reference = plain.prepare(photo_rgb("coffee"), full_l=False)
    per_frame = FrameColorizer(plain, reference, VideoConfig(temporal=False))
    assert "not a residual ColorNet" not in caplog.text  # per-frame: nothing is lost
    temporal = FrameColorizer(plain, reference)
    assert "is not a residual ColorNet" in caplog.text
    for rgb in decode_all(pan[0])[0][:3]:
        frame = plain.prepare(rgb)
        assert np.array_equal(temporal(frame), per_frame(frame))


def test_a_colorizer_that_does_not_match_frames_is_refused(photo_rgb):
    from chromaref.platform.config import PipelineConfig
    from chromaref.platform.pipeline import ColorizationPipeline
    from chromaref.platform.video.temporal import FrameColorizer

    reinhard = ColorizationPipeline(PipelineConfig(colorizer="reinhard"), device="cpu")
    reference = reinhard.prepare(photo_rgb("coffee"), full_l=False)
    with pytest.raises(
        ConfigError, match="use the trained or training-free colorizer, not reinhard"
    ):
        FrameColorizer(reinhard, reference)


def test_a_scene_cut_is_found_and_odd_sizes_and_irregular_times_survive(
    pipeline, photo_rgb, tmp_path
):
    first = pan_frames(photo_rgb("astronaut"), 4, (161, 121))
    second = pan_frames(photo_rgb("coffee"), 4, (161, 121))
    pts = [0, 1, 3, 4, 7, 8, 9, 12]  # variable frame rate
    source = write_clip(tmp_path / "cut.mp4", first + second, pts=pts)
    out = tmp_path / "cut__ref.mp4"
    result = _colorize(pipeline, source, out, photo_rgb("coffee"))
    assert result.cuts == [4]
    frames, times = decode_all(out)
    assert frames[0].shape == (121, 161, 3) and len(frames) == 8
    assert times == pytest.approx([p / 12 for p in pts], abs=1e-3)


def test_bad_videos_are_one_line_errors_and_leave_nothing(pipeline, pan, photo_rgb, tmp_path):
    source, _ = pan
    data = source.read_bytes()
    cases = {
        "garbage.mp4": b"\x00\x01not a video at all" * 100,
        "truncated.mp4": data[: len(data) // 3],
        "empty.mp4": b"",
    }
    png = tmp_path / "still.png"
    from PIL import Image

    Image.fromarray(photo_rgb("coffee")).save(png)
    audio_only = tmp_path / "tone.m4a"
    with av.open(str(audio_only), mode="w") as container:
        stream = container.add_stream("aac", rate=44100, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 44100), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate, frame.pts = 44100, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    paths = [png, audio_only]
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        paths.append(tmp_path / name)
    for path in paths:
        out = tmp_path / "out" / f"{path.stem}__ref.mp4"
        try:
            result = _colorize(pipeline, path, out, photo_rgb("coffee"))
        except VideoError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc)
            assert not out.exists()
        else:  # a truncated clip may still hold whole frames: then they are all there
            assert path.name == "truncated.mp4" and 0 < result.frames < 12
            assert len(decode_all(out)[0]) == result.frames
        leftovers = list((tmp_path / "out").glob(".*")) if (tmp_path / "out").exists() else []
        assert leftovers == []


@pytest.mark.slow
def test_a_gray_reference_and_an_interrupted_run_leave_nothing(pipeline, pan, tmp_path):
    source, truth = pan
    gray = np.repeat(lab_image(truth[0])[..., :1].astype(np.uint8), 3, axis=2)
    with pytest.raises(UnusableReferenceError):
        _colorize(pipeline, source, tmp_path / "gray.mp4", gray)

    def interrupt(done: int, _total: int | None) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _colorize(pipeline, source, tmp_path / "stopped.mp4", truth[0], progress=interrupt)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_encoder_choices_are_checked_and_a_refusal_leaves_nothing(pan, photo_rgb, tmp_path):
    source, _ = pan
    info = probe_video(source)
    frames = list(read_video(source))[:2]
    refusals = {
        ("aac", 18): "audio codec, not a video one",
        ("no-such-codec", 18): "has no encoder",
        ("libx264", 60): "crf must be 0..51",
        ("prores", 18): "does not support",  # not in an MP4 file
    }
    for (codec, crf), reason in refusals.items():
        out = tmp_path / f"{codec}.mp4"
        with (
            pytest.raises(ConfigError, match=reason),
            VideoWriter(out, info, codec=codec, crf=crf) as writer,
        ):
            writer.write(frames[0].rgb, frames[0].pts)
    # an encoder without 4:2:0 gets a format it takes: PNG frames are RGB
    with VideoWriter(tmp_path / "png.mp4", info, codec="png") as writer:
        for frame in frames:
            writer.write(frame.rgb, frame.pts)
    decoded, _ = decode_all(tmp_path / "png.mp4")
    assert len(decoded) == 2
    np.testing.assert_array_equal(decoded[0], frames[0].rgb)  # lossless
    assert sorted(p.name for p in tmp_path.iterdir()) == ["png.mp4"]


def test_a_preview_of_no_frame_is_refused(pipeline, pan, photo_rgb, tmp_path):
    source, _ = pan
    with pytest.raises(ConfigError, match="max_frames must be at least 1"):
        _colorize(pipeline, source, tmp_path / "none.mp4", photo_rgb("coffee"), max_frames=0)
    assert list(tmp_path.iterdir()) == []
