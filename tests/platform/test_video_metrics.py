"""Video metrics on clips panning across a real photo at a known speed: the true motion is
found, a consistently colored pan has no warp error and a flickering one has, CDC sees color
jumps, and everything works on streams."""

from __future__ import annotations

import numpy as np
import pytest
from clips import PAN_PX, pan_frames

from chromaref.platform.video.metrics import (
    TRUTH,
    ClipScores,
    ab_planes,
    cdc,
    js_divergence,
    true_motion,
    warp_error,
)

SIZE = (200, 150)


@pytest.fixture(scope="module")
def pan(photo_rgb) -> list[np.ndarray]:
    return pan_frames(photo_rgb("astronaut"), 8, SIZE)


def _redder(frames: list[np.ndarray], amounts: list[int]) -> list[np.ndarray]:
    """Each frame's red channel raised by its amount."""
    out = []
    for frame, amount in zip(frames, amounts, strict=True):
        shifted = frame.astype(np.int16)
        shifted[..., 0] += amount
        out.append(np.clip(shifted, 0, 255).astype(np.uint8))
    return out


def _flicker(frames: list[np.ndarray], amount: int = 12) -> list[np.ndarray]:
    """The colors jump from frame to frame: red right, up, down, up..."""
    return _redder(frames, [0, *(amount if i % 2 else -amount for i in range(1, len(frames)))])


def test_the_true_motion_of_a_pan_is_found_and_the_entering_strip_is_masked(pan):
    motion = true_motion(pan[0], pan[1])
    xs = np.arange(SIZE[0], dtype=np.float32)
    shift = (motion.map_x - xs)[motion.valid]
    assert np.median(shift) == pytest.approx(PAN_PX, abs=0.2)
    assert not motion.valid[:, -PAN_PX:].any()  # new content: nowhere to come from
    assert motion.valid.mean() > 0.8


def test_warp_error_is_near_zero_for_a_consistent_pan_and_large_for_a_flickering_one(pan):
    motion = true_motion(pan[0], pan[1])
    steady = warp_error(ab_planes(pan[0]), ab_planes(pan[1]), motion)
    flicker = _flicker(pan[:2])
    jumping = warp_error(ab_planes(flicker[0]), ab_planes(flicker[1]), motion)
    assert steady < 1.0
    assert jumping > 5 * steady and jumping > 3.0


def test_cdc_is_zero_for_identical_frames_and_grows_with_color_jumps(pan):
    assert cdc([pan[0]] * 5) == 0.0
    steady, jumping = cdc(iter(pan)), cdc(_flicker(pan))  # a generator works too
    assert jumping > 3 * steady > 0
    p, q = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    assert js_divergence(p, q)[0] == pytest.approx(np.log(2))  # disjoint: the maximum


def test_clip_scores_score_every_mode_against_the_truth_one_frame_at_a_time(pan):
    """Consistently too red (steady) vs alternately too red and too green (flicker): the same
    PSNR, but only the flicker has warp error and CDC beyond the truth's own."""
    scores = ClipScores(["steady", "flicker"])
    steady = _redder(pan, [12] * len(pan))
    for truth, *results in zip(pan, steady, _flicker(pan), strict=True):
        scores.add(truth, dict(zip(("steady", "flicker"), results, strict=True)))
    found = scores.summary(per_frame=True)
    assert set(found) == {"steady", "flicker", TRUTH} and "psnr" not in found[TRUTH]
    # the flicker's first frame is the truth's (infinite PSNR): the mean is over the others
    assert found["steady"]["psnr"] == pytest.approx(found["flicker"]["psnr"], abs=0.5)
    assert 25 < found["steady"]["psnr"] < 40 and found["steady"]["ssim"] < 1.0
    assert found["steady"]["warp_error"] == pytest.approx(found[TRUTH]["warp_error"], abs=0.3)
    assert found[TRUTH]["warp_error"] < 1.0
    assert found["flicker"]["warp_error"] > 5 * found["steady"]["warp_error"]
    assert found["flicker"]["cdc"] > 3 * found["steady"]["cdc"]
    assert len(found["flicker"]["per_frame"]["warp_error"]) == len(pan) - 1
