"""Video colorization: per-frame vs temporal quality and steadiness, speed, peak memory.

    python -m benchmarks.video            # 60 frames of each clip; speed and memory runs
    python -m benchmarks.video --quick    # 20 frames; shorter speed and memory runs

Quality: the real clips of Debian's opencv-doc (`vtest.avi`, a street filmed by a fixed camera;
`Megamind.avi`, an animated trailer with scene cuts) are turned gray and colorized with each
video colorizer (trained, the default, and training-free), each frame on its own and with the
temporal mode, and scored against the truth (`chromaref.platform.video.metrics`). Two
references per clip: its first color frame (a key frame colored by hand, then propagated) and
the frame three quarters into the clip (vtest: the same street with other passers-by;
Megamind: another scene), the case of a reference that is not the clip's own first frame.

Speed and memory: vtest's frames, cropped to 16:9, resized to 854x480 and 1920x1080 and turned
gray, encoded as H.264 clips; each clip is colorized with `colorize_clip` (temporal mode, the
clip's first frame in color as reference) in a fresh process: a 3-frame warm-up run, then the
whole clip timed end to end (decode + colorize + encode), then the process's peak RSS (VmHWM).
The 480p clip is run at two lengths, the second 10x the first: memory must not grow with it.

Pieces: one long 480p clip through `chromaref video --address local` (a private Ray with every
core of this machine), as one Ray task and then cut into pieces; the wall time of the whole
command (Ray start, model loads, decode, colorize, encode and, for pieces, the warm-ups and
the join) on both sides.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks._common import DOCS_IMAGES, run_child, table, write_json
from benchmarks.datasets import MEGAMIND
from benchmarks.report_video import QUALITY_HEADERS, SPEED_HEADERS, quality_rows, speed_rows
from chromaref.platform.config import VIDEO_COLORIZERS

VTEST = MEGAMIND.parent / "vtest.avi"
CLIPS = {"vtest": VTEST, "megamind": MEGAMIND}
KEY_FRAME, LATER_FRAME = "key frame", "later frame"
REFERENCES = (KEY_FRAME, LATER_FRAME)
SIZES = {"480p": (854, 480), "1080p": (1920, 1080)}
WARM_FRAMES = 3
SAMPLES = 4
CHROMAREF = str(Path(sys.executable).parent / "chromaref")


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def reference_frame(path: Path, kind: str, min_chroma: float) -> np.ndarray:
    """The clip's key frame (its first color frame) or the frame three quarters into it."""
    from chromaref.platform.color import mean_chroma
    from chromaref.platform.video.io import probe_video, read_video
    from chromaref.platform.video.metrics import first_color_frame

    if kind == KEY_FRAME:
        return first_color_frame(path, min_chroma)
    frames = probe_video(path).frames
    if not frames:
        raise SystemExit(f"{path}: its frame count is unknown, so it has no later frame")
    at = frames * 3 // 4
    for frame in read_video(path):
        if frame.index >= at and mean_chroma(frame.rgb) >= min_chroma:
            return frame.rgb
    raise SystemExit(f"{path}: no frame with color from frame {at} on")


def quality(method: str, frames: int) -> list[dict]:
    """Per-frame vs temporal with `method`, on each clip from each reference; the default
    method's key-frame runs also leave a frame strip under docs/images."""
    from chromaref.cli.eval_video_cmd import sample_frames, strip
    from chromaref.platform.config import PipelineConfig
    from chromaref.platform.images import save_image
    from chromaref.platform.pipeline import ColorizationPipeline
    from chromaref.platform.video.metrics import evaluate_clip

    pipeline = ColorizationPipeline(PipelineConfig(colorizer=method))
    runs = []
    for name, path in CLIPS.items():
        for kind in REFERENCES:
            reference = reference_frame(path, kind, pipeline.config.min_reference_chroma)
            pictured = method == PipelineConfig().colorizer and kind == KEY_FRAME
            start = _loadavg()
            evaluation = evaluate_clip(
                pipeline,
                path,
                pipeline.prepare(reference, name=kind, full_l=False),
                max_frames=frames,
                keep=sample_frames(frames, SAMPLES) if pictured else (),
            )
            if pictured:
                DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
                save_image(strip(evaluation.samples), DOCS_IMAGES / f"video_{name}.jpg", quality=85)
            runs.append({
                "clip": name,
                "reference": kind,
                "method": method,
                "size": list(reference.shape[1::-1]),
                "frames": evaluation.frames,
                "cuts": evaluation.cuts,
                "scores": evaluation.scores,
                "colorize_fps": {m: evaluation.frames / s for m, s in evaluation.seconds.items()},
                "loadavg": {"start": start, "end": _loadavg()},
            })  # fmt: skip
            print(f"{name}, {kind}, {method}: done", flush=True)
    return runs


def gray_clip(folder: Path, size: tuple[int, int], frames: int) -> tuple[Path, Path]:
    """vtest's first `frames` frames cropped to 16:9, resized to `size` and turned gray, as an
    H.264 clip; and the first of them in color (the reference), as PNG."""
    from chromaref.platform.color import gray_image
    from chromaref.platform.images import save_image
    from chromaref.platform.video.io import VideoWriter, probe_video, read_video

    width, height = size
    info = dataclasses.replace(probe_video(VTEST), width=width, height=height, audio_codec=None)
    clip = folder / f"vtest_{height}p_{frames}.mp4"
    reference = folder / f"vtest_{height}p_reference.png"
    with VideoWriter(clip, info) as writer:
        for frame in read_video(VTEST):
            if frame.index >= frames:
                break
            rows = round(frame.rgb.shape[1] * 9 / 16)
            top = (frame.rgb.shape[0] - rows) // 2
            rgb = cv2.resize(frame.rgb[top : top + rows], size, interpolation=cv2.INTER_AREA)
            if frame.index == 0:
                save_image(rgb, reference)
            writer.write(gray_image(rgb), frame.pts)
    return clip, reference


def child(clip: Path, reference: Path) -> dict:
    """Runs in its own process: a warm-up, then `clip` colorized end to end, and peak RSS."""
    from chromaref.platform.images import load_image
    from chromaref.platform.pipeline import ColorizationPipeline
    from chromaref.platform.video.clip import colorize_clip, fixed_anchor

    pipeline = ColorizationPipeline()
    anchor = fixed_anchor([pipeline.prepare(load_image(reference), full_l=False)])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.mp4"
        colorize_clip(pipeline, clip, [out], anchor, max_frames=WARM_FRAMES)
        start = _loadavg()
        result = colorize_clip(pipeline, clip, [out], anchor)
    with open("/proc/self/status") as status:
        peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return {
        "frames": result.frames,
        "seconds": result.seconds,
        "fps": result.fps,
        "peak_rss_mb": peak_kb / 1024,
        "loadavg": {"start": start, "end": _loadavg()},
    }


def speed(runs: list[tuple[str, int]]) -> list[dict]:
    """One fresh process per (size, frames) run."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, frames in runs:
            clip, reference = gray_clip(Path(tmp), SIZES[label], frames)
            found = run_child("video", ["--child", str(clip), str(reference)])
            rows.append({"size": label, "resolution": list(SIZES[label]), **found})
            print(f"{label} x {frames}: {found['fps']:.2f} frames/s", flush=True)
    return rows


def pieces(frames: int, chunk_seconds: float) -> list[dict]:
    """The same long clip as one Ray task and in pieces of `chunk_seconds`."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clip, reference = gray_clip(Path(tmp), SIZES["480p"], frames)
        for chunk in (0.0, chunk_seconds):
            start, load = time.perf_counter(), _loadavg()
            done = subprocess.run(
                [CHROMAREF, "video", str(clip), "-r", str(reference), "-q",
                 "--out", str(Path(tmp, f"out{chunk:g}")), "--address", "local",
                 "--chunk-seconds", str(chunk)],
                capture_output=True, text=True,
            )  # fmt: skip
            if done.returncode:
                raise RuntimeError(f"chromaref video failed:\n{done.stderr[-2000:]}")
            seconds = time.perf_counter() - start
            rows.append({"chunk_seconds": chunk, "frames": frames, "seconds": seconds,
                         "fps": frames / seconds, "loadavg": {"start": load, "end": _loadavg()},
                         "cpus": os.cpu_count()})  # fmt: skip
            print(f"pieces of {chunk:g} s: {frames / seconds:.2f} frames/s", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 frames, short speed runs")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    frames, short = (20, 5) if args.quick else (60, 8)
    start = _loadavg()
    results = {"quality": [run for method in VIDEO_COLORIZERS for run in quality(method, frames)]}
    print(table(QUALITY_HEADERS, quality_rows(results["quality"])), flush=True)
    results["speed"] = speed([("480p", short), ("480p", 10 * short), ("1080p", short)])
    results["pieces"] = pieces(*((120, 4.0) if args.quick else (600, 15.0)))
    results["loadavg"] = {"start": start, "end": _loadavg()}
    print(table(SPEED_HEADERS, speed_rows(results["speed"])))
    print(f"wrote {write_json('video', results)}")


if __name__ == "__main__":
    main()
