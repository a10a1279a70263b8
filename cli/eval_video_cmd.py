"""`chromaref eval-video`: how well and how steadily a color clip, turned gray, is colorized.

    chromaref eval-video street.mp4 --out report/                 # key frame: its first color frame
    chromaref eval-video street.mp4 -r ref.jpg --out report/ --max-frames 100

Each frame is colorized on its own (per-frame) and with the temporal mode, from the same
reference; both, and the truth itself, are scored (PSNR, SSIM, warp error, CDC: see
`chromaref.platform.video.metrics`). Writes metrics.json, report.md and strip.jpg (gray |
per-frame | temporal | truth for a few frames) to --out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

from chromaref.cli._common import console, friendly_errors, setup_logging, writable_folder
from chromaref.cli._model import ModelOption, build_pipeline, check_video_method
from chromaref.platform.config import MatchingConfig, PipelineConfig, VideoConfig
from chromaref.platform.errors import ConfigError

if TYPE_CHECKING:
    from chromaref.platform.pipeline import ColorizationPipeline
    from chromaref.platform.video.metrics import ClipEvaluation

COLUMNS = ("psnr", "ssim", "warp_error", "cdc")
STRIP = ("gray", "per-frame", "temporal", "truth")
_DEFAULTS = VideoConfig.model_fields


def score_rows(scores: dict[str, dict[str, object]]) -> list[list[str]]:
    """One row per mode (then the truth): PSNR, SSIM, warp error, CDC ("-" where none)."""
    return [
        [name, *(_cell(found.get(column), column) for column in COLUMNS)]
        for name, found in scores.items()
    ]


def _cell(value: object, column: str) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if column == "psnr" else f"{value:.4f}"


def markdown(evaluation: ClipEvaluation, clip: Path, reference: str, method: str) -> str:
    """The report: what was measured, the table, the picture."""
    fps = ", ".join(f"{mode} {evaluation.frames / s:.2f}" for mode, s in evaluation.seconds.items())
    lines = [
        f"# Video evaluation: {clip.name}",
        "",
        f"{evaluation.frames} frames turned gray and colorized by the {method} colorizer from "
        f"{reference}; scene cuts at "
        f"{evaluation.cuts or 'none'}. Colorization frames/s (decode and metrics excluded): "
        f"{fps}.",
        "",
        "PSNR (dB) and SSIM against the truth (RGB, higher is better); warp error: mean |ab| "
        "change along the truth's optical flow, occlusions masked; CDC: Jensen-Shannon "
        "divergence of consecutive frames' RGB histograms (gaps 1, 2, 4). For both, lower is "
        "steadier; the truth's own value is the reference point (colors smoother than the "
        "truth's chroma noise can go below it).",
        "",
        "| mode | PSNR | SSIM | warp error | CDC |",
        "|---|---|---|---|---|",
        *("| " + " | ".join(row) + " |" for row in score_rows(evaluation.scores)),
        "",
        "![gray | per-frame | temporal | truth](strip.jpg)",
    ]
    return "\n".join(lines) + "\n"


def strip(samples: dict[int, dict[str, np.ndarray]]) -> np.ndarray:
    """gray | per-frame | temporal | truth, one row per kept frame."""
    from chromaref.platform.grid import make_grid

    frames = sorted(samples)
    rows = [[samples[n][kind] for kind in STRIP] for n in frames]
    labels = [[f"frame {n}: {kind}" for kind in STRIP] for n in frames]
    return make_grid(rows, labels=labels, cell_height=180)


def sample_frames(total: int | None, count: int) -> set[int]:
    """`count` frame numbers spread evenly over a clip of `total` frames (the first if unknown)."""
    if not total or count < 1:
        return {0}
    return {int(n) for n in np.linspace(0, total - 1, min(count, total)).round()}


def _finite(value: object) -> object:
    """`value` with NaN and infinities as None: JSON has no such numbers (strict readers refuse
    Python's `NaN`), and a metric can be undefined (e.g. no pixel survives the occlusion mask)."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _model_record(pipeline: ColorizationPipeline, model: str | None) -> dict | None:
    """Which trained model was scored (None for the training-free colorizer)."""
    net = getattr(pipeline.colorizer, "net", None)
    return None if net is None else {"model": model or "shipped", "sha256": net.meta.sha256}


@friendly_errors
def eval_video_command(
    clip: Annotated[Path, typer.Argument(help="A COLOR video: it is turned gray and colorized.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder.")],
    reference: Annotated[
        Path | None,
        typer.Option(
            "--reference",
            "-r",
            help="Color reference (default: the clip's first "
            "frame with color, i.e. a key frame colored by hand, then propagated).",
        ),
    ] = None,
    max_frames: Annotated[int | None, typer.Option(help="Evaluate this many frames.")] = None,
    samples: Annotated[int, typer.Option(help="Frames shown in strip.jpg.")] = 4,
    method: Annotated[
        str, typer.Option(help="trained (default) or training-free: see `chromaref video`.")
    ] = PipelineConfig().colorizer,
    model: ModelOption = None,
    working_size: Annotated[
        int, typer.Option(help="Long side (px) of the matched copy.")
    ] = MatchingConfig().working_size,
    temporal_weight: Annotated[
        float, typer.Option(help="Temporal mode: share of past frames' color evidence kept (0..1).")
    ] = _DEFAULTS["temporal_weight"].default,
    hold: Annotated[
        float, typer.Option(help="Temporal mode: trust in the previous result's colors.")
    ] = _DEFAULTS["hold"].default,
    flow_sigma: Annotated[
        float, typer.Option(help="Temporal mode: L error (0..100) that halves what is carried.")
    ] = _DEFAULTS["flow_sigma"].default,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details.")] = False,
) -> None:
    """Turn a color clip gray, colorize it per-frame and with the temporal mode, and report
    PSNR, SSIM, warp error and CDC for both and for the truth (JSON, Markdown, a frame strip)."""
    from chromaref.cli._colorize import prepare_reference
    from chromaref.platform.files import atomic_write_text
    from chromaref.platform.images import load_image, save_image
    from chromaref.platform.video.io import probe_video
    from chromaref.platform.video.metrics import evaluate_clip, first_color_frame

    setup_logging(verbose)
    if max_frames is not None and max_frames < 2:
        raise ConfigError(f"--max-frames must be at least 2 (motion needs two), got {max_frames}")
    if samples < 1:
        raise ConfigError(f"--samples must be at least 1, got {samples}")
    check_video_method(method, model)
    writable_folder(out)
    config = VideoConfig(temporal_weight=temporal_weight, hold=hold, flow_sigma=flow_sigma)
    pipeline = build_pipeline(method, working_size=working_size, model=model)
    total = min(filter(None, (probe_video(clip).frames, max_frames)), default=None)
    if reference is None:
        key = first_color_frame(clip, pipeline.config.min_reference_chroma)
        prepared = pipeline.prepare(key, name="key frame", full_l=False)
        described = "its first frame with color"
    else:
        prepared = prepare_reference(pipeline, load_image(reference), name=reference.stem).prepared
        described = str(reference)
    evaluation = evaluate_clip(
        pipeline,
        clip,
        prepared,
        config=config,
        max_frames=max_frames,
        keep=sample_frames(total, samples),
        per_frame=True,
    )
    if evaluation.frames < 2:
        raise ConfigError(f"{clip}: {evaluation.frames} frame(s); the video metrics need 2 or more")
    record = {
        "clip": str(clip),
        "reference": described,
        "frames": evaluation.frames,
        "cuts": evaluation.cuts,
        "config": config.model_dump(),
        "method": method,
        "model": _model_record(pipeline, model),
        "working_size": working_size,
        "colorize_seconds": evaluation.seconds,
        "scores": evaluation.scores,
    }
    atomic_write_text(out / "metrics.json", json.dumps(_finite(record), indent=2) + "\n")
    save_image(strip(evaluation.samples), out / "strip.jpg", quality=90)
    report = markdown(evaluation, clip, described, method)
    atomic_write_text(out / "report.md", report)
    console.print(report, highlight=False, markup=False)
    for name in ("metrics.json", "report.md", "strip.jpg"):
        typer.echo(str(out / name))
