"""The video section of docs/benchmarks.md: per-frame vs temporal colorization of real clips
(quality and steadiness against the truth's own), speed at 480p and 1080p, and peak memory by
clip length; every number from results/video.json.
"""

from __future__ import annotations

from typing import Any

from benchmarks._common import DOCS_IMAGES, table
from benchmarks.report import Results, _opening
from chromaref.platform.config import PipelineConfig

DEFAULT_METHOD = PipelineConfig().colorizer
BASELINE = "training-free"
MODES = ("per-frame", "temporal")
TRUTH = "truth"
QUALITY_HEADERS = ["clip", "reference", "method", "mode", "frames", "PSNR dB", "SSIM",
                   "warp error", "CDC", "frames/s"]  # fmt: skip
SPEED_HEADERS = ["size", "frames", "seconds", "frames/s", "peak RSS MB", "load avg (1 min)"]
PIECES_HEADERS = ["Ray tasks", "frames", "seconds", "frames/s", "load avg (1 min)"]
WARP_GOAL = 1.10  # temporal warp error at most 10% over the truth's own
CDC_GOAL = 0.5  # temporal CDC at most half the per-frame one
PSNR_GOAL_DB = -0.3  # temporal PSNR at most 0.3 dB under per-frame
FPS_GOAL = 5.0  # at 480p, on 2 cores


def _in_order(runs: list[Results]) -> list[Results]:
    """By clip (as run), then reference, then method (as run: the default first)."""
    clips = list(dict.fromkeys(r["clip"] for r in runs))
    references = list(dict.fromkeys(r["reference"] for r in runs))
    return sorted(runs, key=lambda r: (clips.index(r["clip"]), references.index(r["reference"])))


def quality_rows(runs: list[Results]) -> list[list[Any]]:
    """Each run's two modes, then each clip's truth (the same for every run of the clip)."""
    rows, ordered = [], _in_order(runs)
    for clip in dict.fromkeys(r["clip"] for r in ordered):
        of_clip = [r for r in ordered if r["clip"] == clip]
        for run in of_clip:
            for mode in MODES:
                s, fps = run["scores"][mode], run["colorize_fps"][mode]
                rows.append([clip, run["reference"], run["method"], mode, run["frames"],
                             f"{s['psnr']:.2f}", f"{s['ssim']:.3f}", f"{s['warp_error']:.3f}",
                             f"{s['cdc']:.5f}", f"{fps:.2f}"])  # fmt: skip
        truth = of_clip[-1]["scores"][TRUTH]
        rows.append([clip, "-", "-", TRUTH, of_clip[-1]["frames"], "-", "-",
                     f"{truth['warp_error']:.3f}", f"{truth['cdc']:.5f}", "-"])  # fmt: skip
    return rows


def speed_rows(runs: list[Results]) -> list[list[Any]]:
    return [
        [f"{r['size']} ({r['resolution'][0]}x{r['resolution'][1]})", r["frames"],
         f"{r['seconds']:.1f}", f"{r['fps']:.2f}", f"{r['peak_rss_mb']:.0f}",
         f"{r['loadavg']['start'][0]:.1f} -> {r['loadavg']['end'][0]:.1f}"]
        for r in runs
    ]  # fmt: skip


def pieces_rows(runs: list[Results]) -> list[list[Any]]:
    return [
        ["one" if not r["chunk_seconds"] else f"pieces of {r['chunk_seconds']:g} s",
         r["frames"], f"{r['seconds']:.1f}", f"{r['fps']:.2f}",
         f"{r['loadavg']['start'][0]:.1f} -> {r['loadavg']['end'][0]:.1f}"]
        for r in runs
    ]  # fmt: skip


def _pieces_section(runs: list[Results]) -> str:
    whole, cut = runs
    return (
        "One long clip on Ray: the 480p clip of "
        f"{whole['frames']} frames through `chromaref video --address local` (a private Ray "
        f"with this machine's {whole['cpus']} cores), as one task and in pieces; the wall "
        "time of the whole command on both sides (Ray start, model loads, decode, colorize, "
        "encode; for pieces also their 1 s warm-ups and the join).\n\n"
        + table(PIECES_HEADERS, pieces_rows(runs))
        + f"\n\n- **Pieces vs one task**: {cut['fps'] / whole['fps']:.2f}x the frames/s on "
        f"{whole['cpus']} cores.\n"
    )


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _quality_finding(run: Results) -> str:
    per, temporal, truth = (run["scores"][mode] for mode in (*MODES, TRUTH))
    warp = temporal["warp_error"] / truth["warp_error"]
    cdc = temporal["cdc"] / per["cdc"]
    psnr = temporal["psnr"] - per["psnr"]
    cuts = ", ".join(map(str, run["cuts"]))
    cuts = f" (scene cuts at frame(s) {cuts})" if cuts else ""
    return (
        f"- **{run['clip']}, {run['reference']}, {run['method']}**{cuts}: temporal warp error "
        f"{warp:.2f}x the truth's own (per-frame {per['warp_error'] / truth['warp_error']:.2f}x;"
        f" goal <= {WARP_GOAL:.2f}x: {_met(warp <= WARP_GOAL)}); CDC {cdc:.2f}x per-frame's "
        f"(goal <= {CDC_GOAL:g}x: {_met(cdc <= CDC_GOAL)}; the truth's own is "
        f"{truth['cdc'] / per['cdc']:.2f}x); PSNR {psnr:+.2f} dB vs per-frame (goal >= "
        f"{PSNR_GOAL_DB:+.1f} dB: {_met(psnr >= PSNR_GOAL_DB)})."
    )


def _method_comparison(runs: list[Results]) -> str:
    """Temporal mode, the default colorizer against training-free, per clip and reference."""
    temporal = {(r["clip"], r["reference"], r["method"]): r["scores"]["temporal"] for r in runs}
    lines = []
    for clip, reference, method in temporal:
        if method != DEFAULT_METHOD or (clip, reference, BASELINE) not in temporal:
            continue
        ours, base = temporal[clip, reference, method], temporal[clip, reference, BASELINE]
        lines.append(
            f"{clip}, {reference}: {ours['psnr'] - base['psnr']:+.2f} dB, SSIM "
            f"{round(ours['ssim'] - base['ssim'], 3) + 0.0:+.3f}, warp error "  # no "-0.000"
            f"{ours['warp_error'] / base['warp_error']:.2f}x"
        )
    if not lines:
        return ""
    return f"- **{DEFAULT_METHOD} against {BASELINE}**, temporal mode: " + "; ".join(lines) + "."


def _speed_finding(runs: list[Results]) -> str:
    at_480 = sorted((r for r in runs if r["size"] == "480p"), key=lambda r: r["frames"])
    longest = at_480[-1]
    lines = [
        f"- **Speed at 480p**: {longest['fps']:.2f} frames/s over {longest['frames']} frames "
        f"(goal >= {FPS_GOAL:g}: {_met(longest['fps'] >= FPS_GOAL)})."
    ]
    if len(at_480) > 1:
        short = at_480[0]
        lines.append(
            f"- **Memory by clip length** (480p): {short['peak_rss_mb']:.0f} MB peak for "
            f"{short['frames']} frames, {longest['peak_rss_mb']:.0f} MB for {longest['frames']}"
            f" ({longest['peak_rss_mb'] / short['peak_rss_mb']:.2f}x for "
            f"{longest['frames'] / short['frames']:.0f}x the frames)."
        )
    return "\n".join(lines)


def video_section(results: Results | None) -> str:
    text = _opening(
        "## Video: per-frame vs temporal colorization (CPU)",
        "python -m benchmarks.video",
        results,
        "Quality: the real clips of Debian's `opencv-doc` (`vtest.avi`, a street filmed by a "
        "fixed camera, 768x576 at 10 frames/s; `Megamind.avi`, an animated trailer, 720x528 "
        "with scene cuts) are turned gray and colorized by each video colorizer (`trained`, "
        "the default: ColorNet correcting the temporal training-free colors, and "
        "`training-free`), each frame on its own (per-frame) and with the temporal mode "
        "(default `VideoConfig`), from the same prepared frames, with two references per clip: "
        "its first color frame (**key frame**: one colored by hand, then propagated) and the "
        "frame three quarters into the clip (**later frame**: vtest's street with other "
        "passers-by, a Megamind scene from later in the trailer). Against the "
        "truth: RGB PSNR and SSIM; **warp error**, the mean |ab| (CIELAB) change between "
        "consecutive results along the truth's own motion (DIS optical flow of its luminance), "
        "occlusions masked by forward-backward consistency; **CDC**, the Jensen-Shannon "
        "divergence of consecutive frames' RGB histograms at gaps 1, 2 and 4. For both, the "
        "truth's own value is the reference point (its chroma carries codec noise, so smooth "
        "colors can go below it). frames/s here: colorization alone (both modes share "
        "decoding and preparation, which are not counted).\n\n",
    )
    if results is None:
        return text
    runs = results["quality"]
    text += table(QUALITY_HEADERS, quality_rows(runs)) + "\n\n"
    text += "\n".join(_quality_finding(run) for run in _in_order(runs))
    text += "\n" + _method_comparison(runs) + "\n\n"
    text += (
        "Speed and memory: vtest's frames cropped to 16:9, resized and turned gray, as H.264 "
        "clips; each run in a fresh process: `colorize_clip` (temporal mode, default trained "
        "colorizer, reference the first frame in color) on 3 frames to warm up, then the "
        "whole clip timed end to end (**decode + colorize + encode**, model loaded), then the "
        "process's peak RSS (VmHWM, model and warm-up included). The machine is shared: its "
        "load average is given per run.\n\n"
    )
    text += table(SPEED_HEADERS, speed_rows(results["speed"])) + "\n\n"
    start, end = (", ".join(f"{v:.2f}" for v in results["loadavg"][k]) for k in ("start", "end"))
    text += _speed_finding(results["speed"]) + "\n"
    text += f"- Load averages (1, 5, 15 min): {start} at the start, {end} at the end.\n"
    if results.get("pieces"):
        text += "\n" + _pieces_section(results["pieces"])
    for clip in dict.fromkeys(run["clip"] for run in runs):
        if (DOCS_IMAGES / f"video_{clip}.jpg").is_file():
            text += f"\n{clip}, {DEFAULT_METHOD} from the key frame "
            text += "(gray | per-frame | temporal | truth):\n\n"
            text += f"![{clip} strip](images/video_{clip}.jpg)\n"
    return text
