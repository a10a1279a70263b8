"""The training section of docs/benchmarks.md: Ray Train throughput with 1 and 2 workers, and
the 2-worker DDP loss curve against the 1-worker one (same seed, same global batch); every
number from results/training.json.
"""

from __future__ import annotations

from typing import Any

from benchmarks._common import DOCS_IMAGES, table
from benchmarks.report import Figure, Results, _opening

HEADERS = [
    "workers",
    "batch per worker",
    "steps",
    "samples/s (median)",
    "wall s (start-up incl.)",
    "final loss",
    "max relative loss difference vs 1 worker",
]
FLOOR = 1e-10  # a difference of exactly 0 is drawn here on the log axis
METHOD = (
    "`chromaref.training.trainer.train`, the function behind `chromaref train`, run twice "
    "with the same seed and the same global batch: 1 worker with the whole batch, then 2 "
    "workers (DDP, gloo) with half of it each; a private local Ray with 2 CPUs, 1 CPU per "
    "worker, `log_every=1`, validation and the checkpoint only after the last step, an MLflow "
    "sqlite store and Ray Train storage in a temporary folder. Per-step `train/loss` (over all "
    "workers), its terms and `train/samples_per_s` (all workers, per step; the median leaves "
    "out step 1, the warm-up) are read back from MLflow. Why the curves must match: each "
    "sample depends only on (seed, epoch, position); rank r of 2 gets the slots "
    "`[(2k + r) * b, ...)` of step k, so the two ranks together get the 1-worker batch; the "
    "loss is a per-sample mean (ColorNet normalises per sample, no batch statistics); and DDP "
    "averages the two gradients, which is the gradient of the mean over the whole batch. Left: "
    "float32 sums in another order. Without synchronised gradients each rank would train on "
    "its own half and the curves would part.\n\n"
)


def rows(results: Results) -> list[list[Any]]:
    diff = results["comparison"]["max_rel_loss_diff"]
    return [
        [r["workers"], r["batch_per_worker"], r["steps"], f"{r['samples_per_s_median']:.2f}",
         f"{r['seconds']:.0f}", f"{r['final_loss']:.5f}",
         "-" if r["workers"] == 1 else f"{diff:.1e}"]
        for r in results["runs"]
    ]  # fmt: skip


def findings(results: Results) -> str:
    c, s = results["comparison"], results["settings"]
    verdict = "within" if c["within_tolerance"] else "**outside**"
    terms = ", ".join(f"{k} {v:.1e}" for k, v in c["max_rel_term_diff"].items() if v is not None)
    noise, versus = c["loss_step_noise"], ""
    if noise:
        ratio = noise / max(c["max_rel_loss_diff"], FLOOR)
        versus = (
            " The curve's own median change from one step to the next (a new batch each "
            f"step) is {noise:.1e} of the loss, about {float(f'{ratio:.2g}'):,.0f} times larger."
        )
    start, end = (", ".join(f"{v:.2f}" for v in results["loadavg"][k]) for k in ("start", "end"))
    return "\n".join(
        [
            f"- **DDP follows the 1-worker curve**: over {s['steps']} steps the per-step loss of "
            f"2 workers x {s['global_batch'] // 2} differs from 1 worker x {s['global_batch']} "
            f"by at most {c['max_abs_loss_diff']:.1e} ({c['max_rel_loss_diff']:.1e} of the "
            f"loss; {verdict} the tolerance {c['tolerance']:g}); per term at most: {terms}. The "
            f"final weights differ by {c['weights_rel_diff']:.1e} (relative L2).{versus}",
            f"- **Throughput**: 2 workers give {c['speedup']:.2f}x the samples/s of 1 worker "
            f"({s['working_size']} px crops, `{s['model']}`). The machine is shared with other "
            f"jobs (load averages (1, 5, 15 min): {start} at the start, {end} at the end, on "
            "2 cores), so these rates say little about an idle machine; the loss comparison "
            "does not depend on them.",
        ]
    )


def training_section(results: Results | None, figures: list[Figure]) -> str:
    text = _opening(
        "## Training: Ray Train with 1 and 2 workers (CPU)",
        "python -m benchmarks.training",
        results,
        METHOD,
    )
    if results is None:
        return text
    text += table(HEADERS, rows(results)) + "\n\n" + findings(results) + "\n\n"
    path = DOCS_IMAGES / "training_ddp.png"
    figures.append(Figure(path, lambda fig: _plot(fig, results), (11, 3.3)))
    return text + figures[-1].link() + "\n"


def _plot(fig: Any, results: Results) -> None:
    ax_loss, ax_diff, ax_rate = fig.subplots(1, 3, gridspec_kw={"width_ratios": [3, 3, 1.4]})
    one, two = results["runs"]
    c = results["comparison"]
    steps = range(1, len(one["history"]["loss"]) + 1)
    for run, style in ((one, "-"), (two, "o")):
        noun = "worker" if run["workers"] == 1 else "workers"
        label = f"{run['workers']} {noun} x {run['batch_per_worker']}"
        ax_loss.plot(steps, run["history"]["loss"], style, markersize=4, label=label,
                     fillstyle="none")  # fmt: skip
    ax_loss.set(xlabel="step", ylabel="train/loss", title="loss per step, same seed")
    for ax in (ax_loss, ax_diff):
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_loss.legend(fontsize=7)
    diffs = [max(d, FLOOR) for d in c["rel_loss_diff_per_step"]]
    ax_diff.plot(steps, diffs, "o-", markersize=3, label="|2 workers - 1 worker| / loss")
    ax_diff.axhline(c["tolerance"], color="C3", linestyle="--", label="tolerance")
    if c["loss_step_noise"]:
        ax_diff.axhline(c["loss_step_noise"], color="C2", linestyle=":",
                        label="median step-to-step change")  # fmt: skip
    ax_diff.set(xlabel="step", ylabel="relative difference", yscale="log",
                title="2 workers vs 1 worker")  # fmt: skip
    ax_diff.legend(fontsize=7)
    labels = [f"{r['workers']} x {r['batch_per_worker']}" for r in results["runs"]]
    rates = [r["samples_per_s_median"] for r in results["runs"]]
    ax_rate.bar(labels, rates, color=["C0", "C1"])
    ax_rate.set(xlabel="workers x batch", ylabel="samples/s (median)", title="throughput")
    for ax in (ax_loss, ax_diff, ax_rate):
        ax.grid(alpha=0.3)
