"""The training section of docs/benchmarks.md: Ray Train throughput with 1 and 2 workers, and
the 2-worker DDP loss curve against the 1-worker one (same seed, same global batch); every
number from results/training.json.
"""

from __future__ import annotations

from typing import Any

from benchmarks._common import DOCS_IMAGES, table
from benchmarks.report import Figure, Results, _opening

HEADERS = [
    "run",
    "workers",
    "batch per worker",
    "threads per worker",
    "steps",
    "samples/s (median)",
    "wall s (start-up incl.)",
    "final loss",
    "max relative loss difference vs 1 worker",
]
ROLES = ("1 worker", "2 workers (DDP)", "control: 1 worker, 2 threads")
FLOOR = 1e-10  # a difference of exactly 0 is drawn here on the log axis
METHOD = (
    "`chromaref.training.trainer.train`, the function behind `chromaref train`, run three "
    "times with the same seed and the same global batch: 1 worker with the whole batch, 2 "
    "workers (DDP, gloo) with half of it each, and a control, 1 worker with the whole batch on "
    "2 threads (the first run's math with another float summation order); a private local Ray "
    "with 2 CPUs (Ray gives each worker as many torch threads as CPUs), `log_every=1`, "
    "validation and the checkpoint only after the last step, an MLflow sqlite store and Ray "
    "Train storage in a temporary folder. Per-step `train/loss` (over all workers), its terms "
    "and `train/samples_per_s` (all workers; the median leaves out step 1, the warm-up) are "
    "read back from MLflow. Why the 2-worker curve must match: each sample depends only on "
    "(seed, epoch, position); rank r of 2 gets the slots `[(2k + r) * b, ...)` of step k, so "
    "the two ranks together get the 1-worker batch (their network inputs are bitwise the "
    "same); the loss is a per-sample mean (ColorNet normalises per sample, no batch "
    "statistics); and DDP averages the two gradients, which is the gradient of the mean over "
    "the whole batch. Left: float32 sums in another order, which training amplifies from step "
    "to step; the control measures by how much. Without synchronised gradients each rank "
    "would take its own steps and the curves would part by percents from step 2 on.\n\n"
)


def rows(results: Results) -> list[list[Any]]:
    c = results["comparison"]
    diffs = [
        "-",
        f"{c['ddp']['max_rel_loss_diff']:.1e}",
        f"{c['control']['max_rel_loss_diff']:.1e}",
    ]
    return [
        [role, r["workers"], r["batch_per_worker"], r["cpus_per_worker"], r["steps"],
         f"{r['samples_per_s_median']:.2f}", f"{r['seconds']:.0f}", f"{r['final_loss']:.5f}", d]
        for role, r, d in zip(ROLES, results["runs"], diffs, strict=True)
    ]  # fmt: skip


def _first_departure(per_step: list[float], level: float = 1e-5) -> str:
    step = next((i for i, d in enumerate(per_step, start=1) if d > level), None)
    return f"up to step {step - 1}" if step else "at every step"


def findings(results: Results) -> str:
    c, s = results["comparison"], results["settings"]
    ddp, control = c["ddp"], c["control"]
    verdict = "within" if c["within_noise"] else "**outside**"
    terms = ", ".join(f"{k} {v:.1e}" for k, v in ddp["max_rel_term_diff"].items() if v is not None)
    start, end = (", ".join(f"{v:.2f}" for v in results["loadavg"][k]) for k in ("start", "end"))
    return "\n".join(
        [
            f"- **DDP follows the 1-worker curve within noise**: over {s['steps']} steps the "
            f"per-step loss of 2 workers x {s['global_batch'] // 2} differs from 1 worker x "
            f"{s['global_batch']} by at most {ddp['max_abs_loss_diff']:.1e} "
            f"({ddp['max_rel_loss_diff']:.1e} of the loss; per term at most: {terms}); the "
            f"control, the same 1-worker run on 2 threads, by {control['max_rel_loss_diff']:.1e}"
            f". Bound: the larger of {c['tolerance']:g} and {c['noise_factor']:g} x the "
            f"control's: {verdict}. Both agree to within 1e-5 "
            f"{_first_departure(ddp['rel_loss_diff_per_step'])} (DDP) and "
            f"{_first_departure(control['rel_loss_diff_per_step'])} (control), then rounding "
            f"differences grow with training. Final weights differ by "
            f"{ddp['weights_rel_diff']:.1e} (DDP) and {control['weights_rel_diff']:.1e} "
            f"(control) in relative L2. The curve's own median change from one step to the next "
            f"(a new batch each step) is {c['loss_step_change']:.1e} of the loss.",
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
    ax_loss, ax_diff, ax_rate = fig.subplots(1, 3, gridspec_kw={"width_ratios": [3, 3, 1.6]})
    c = results["comparison"]
    steps = range(1, len(results["runs"][0]["history"]["loss"]) + 1)
    for role, run, style in zip(ROLES, results["runs"], ("-", "o", "x"), strict=True):
        ax_loss.plot(steps, run["history"]["loss"], style, markersize=4, label=role,
                     fillstyle="none")  # fmt: skip
    ax_loss.set(xlabel="step", ylabel="train/loss", title="loss per step, same seed")
    ax_loss.legend(fontsize=7)
    for key, role, color in (("ddp", ROLES[1], "C1"), ("control", ROLES[2], "C2")):
        diffs = [max(d, FLOOR) for d in c[key]["rel_loss_diff_per_step"]]
        ax_diff.plot(steps, diffs, "o-", markersize=3, color=color, label=role)
    ax_diff.axhline(c["bound"], color="C3", linestyle="--", label="bound")
    ax_diff.axhline(c["loss_step_change"], color="0.5", linestyle=":",
                    label="median step-to-step change")  # fmt: skip
    ax_diff.set(xlabel="step", ylabel="|loss - loss of 1 worker| / loss", yscale="log",
                title="difference from the 1-worker run")  # fmt: skip
    ax_diff.legend(fontsize=7)
    for ax in (ax_loss, ax_diff):
        ax.xaxis.get_major_locator().set_params(integer=True)
    labels = [
        f"{r['workers']} x {r['batch_per_worker']}\n{r['cpus_per_worker']} thr."
        for r in results["runs"]
    ]
    rates = [r["samples_per_s_median"] for r in results["runs"]]
    ax_rate.bar(labels, rates, color=["C0", "C1", "C2"])
    ax_rate.set(xlabel="workers x batch", ylabel="samples/s (median)", title="throughput")
    for ax in (ax_loss, ax_diff, ax_rate):
        ax.grid(alpha=0.3)
