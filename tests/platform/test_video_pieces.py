"""A long clip in pieces (what Ray tasks colorize in parallel), joined back into one video:
spans that tile the clip, and a join that keeps every frame, timestamp, rotation and audio."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from clips import decode_all, pan_frames, write_clip

from chromaref.platform.video.clip import Span, colorize_clip, fixed_anchor, plan_spans
from chromaref.platform.video.io import join_videos, probe_video, read_video


def test_spans_tile_the_clip_and_only_later_ones_warm_up():
    spans = plan_spans(10.0, 3.0, 1.0)
    assert len(spans) == 3 and spans[1].start == pytest.approx(10 / 3)
    assert spans[0].start == 0 and spans[-1].stop is None
    assert all(a.stop == b.start for a, b in itertools.pairwise(spans))
    assert [s.warmup for s in spans] == [0.0, 1.0, 1.0]
    assert plan_spans(2.0, 60.0, 1.0) == [Span()]


def test_reading_from_a_time_starts_at_that_frame(photo_rgb, tmp_path):
    clip = write_clip(tmp_path / "c.mp4", pan_frames(photo_rgb("coffee"), 24, (160, 120)))
    everything = list(read_video(clip))
    later = list(read_video(clip, start=1.0))  # 12 frames/s: frame 12 on
    assert [f.pts for f in later] == [f.pts for f in everything[12:]]
    assert np.array_equal(later[0].rgb, everything[12].rgb)


@pytest.mark.slow
def test_pieces_joined_are_the_whole_clip(pipeline, photo_rgb, tmp_path):
    """Three pieces, each warmed up on the frames before it, joined without re-encoding:
    every frame at its source time, the rotation and the whole audio track, and colors close
    to one run over the whole clip."""
    frames = pan_frames(photo_rgb("astronaut"), 24, (320, 240))
    source = write_clip(tmp_path / "pan.mp4", frames, audio=True, rotation=90)
    info = probe_video(source)
    anchor = fixed_anchor([pipeline.prepare(frames[0], full_l=False)])
    whole = colorize_clip(pipeline, source, [tmp_path / "whole.mp4"], anchor)
    parts = []
    for k, span in enumerate(plan_spans(info.duration, 0.7, 0.5)):
        part = tmp_path / f"part{k}.mp4"
        done = colorize_clip(pipeline, source, [part], anchor, span=span)
        assert probe_video(part).audio_codec is None  # the join adds the audio once
        parts.append(part)
        assert done.frames == 8
    join_videos(parts, tmp_path / "joined.mp4", info, source)

    joined, times = decode_all(tmp_path / "joined.mp4")
    expected, _ = decode_all(whole.outputs[0])
    assert len(joined) == 24 and times == pytest.approx(decode_all(source)[1], abs=1e-3)
    out = probe_video(tmp_path / "joined.mp4")
    assert out.rotation == 90 and out.audio_codec == "aac"
    assert out.duration == pytest.approx(info.duration, abs=0.1)
    difference = [np.abs(a.astype(int) - b).mean() for a, b in zip(joined, expected, strict=True)]
    assert max(difference) < 4, difference
