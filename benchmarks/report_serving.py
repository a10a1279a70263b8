"""The serving section of docs/benchmarks.md: throughput by replicas and batching, autoscaling
under a step load, and what HTTP adds to one request; every number from results/serving.json.
"""

from __future__ import annotations

from typing import Any

from benchmarks._common import DOCS_IMAGES, table
from benchmarks.report import Figure, Results, _opening

RATIO_GOAL = 1.7  # 2 Colorizer replicas vs 1 on two cores
OVERHEAD_GOAL_MS = 50.0
APP_ROLES = ("Colorizer", "Retriever", "Gateway", "proxy", "Ray", "client")
LOAD_HEADERS = [
    "Colorizer replicas",
    "batching",
    "requests",
    "concurrency",
    "requests/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "vs 1 replica",
    "cores: Colorizer",
    "Retriever",
    "Gateway + proxy + Ray",
    "client",
    "other processes",
]
OVERHEAD_HEADERS = ["path", "median ms", "added ms"]


def _run(runs: list[Results], replicas: int, batching: bool) -> Results | None:
    found = [r for r in runs if r["replicas"] == replicas and r["batching"] == batching]
    return found[0] if found else None


def load_rows(runs: list[Results]) -> list[list[Any]]:
    """One row per configuration: throughput, latency and the cores each part used."""
    rows = []
    for r in runs:
        one = _run(runs, 1, r["batching"])
        cores = r["cores"]
        rows.append(
            [r["replicas"], f"on (max {r['max_batch_size']})" if r["batching"] else "off",
             r["requests"], r["concurrency"], f"{r['throughput_rps']:.2f}",
             *(f"{r['latency_ms'][p]:.0f}" for p in ("p50", "p95", "p99")),
             f"{r['throughput_rps'] / one['throughput_rps']:.2f}x" if one else "-",
             f"{cores['Colorizer']:.2f}", f"{cores['Retriever']:.2f}",
             f"{cores['Gateway'] + cores['proxy'] + cores['Ray']:.2f}", f"{cores['client']:.2f}",
             f"{cores['other']:.2f}"]
        )  # fmt: skip
    return rows


def overhead_rows(overhead: Results) -> list[list[Any]]:
    http, local = overhead["http_ms"], overhead["in_process_ms"]
    return [
        ["in-process (same stages, 1 torch thread)", f"{local:.0f}", "-"],
        ["HTTP, uploaded reference", f"{http:.0f}", f"{http - local:+.0f}"],
        ["HTTP, top=1 retrieved reference", f"{overhead['retrieved_http_ms']:.0f}",
         f"{overhead['retrieved_http_ms'] - local:+.0f}"],
    ]  # fmt: skip


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _scaling_finding(runs: list[Results]) -> str:
    one, two = _run(runs, 1, False), _run(runs, 2, False)
    if not (one and two):
        return ""
    ratio = two["throughput_rps"] / one["throughput_rps"]
    cores = two["cores"]
    rest = sum(cores[role] for role in APP_ROLES if role != "Colorizer")
    per_request = {k: v * two["seconds"] / two["requests"] for k, v in cores.items()}
    return (
        f"- **2 Colorizer replicas vs 1**: {ratio:.2f}x the requests/s (goal {RATIO_GOAL}x: "
        f"{_met(ratio >= RATIO_GOAL)}). Two replicas need two free cores for the Colorizers "
        f"alone; in that run they got {cores['Colorizer']:.2f}, while the rest of the app and "
        f"the client used {rest:.2f} cores and other processes on the machine "
        f"{cores['other']:.2f}. Per request: {per_request['Colorizer']:.2f} CPU-s in the "
        f"Colorizer, {per_request['Retriever']:.2f} in the Retriever (the target's descriptors "
        f"and the search) and {per_request['Gateway'] + per_request['proxy']:.2f} in the "
        "ingress and the proxy, all on the same two cores."
    )


def _batching_finding(runs: list[Results]) -> str:
    ratios = [
        f"{replicas} replica(s) {on['throughput_rps'] / off['throughput_rps']:.2f}x"
        for replicas in sorted({r["replicas"] for r in runs})
        if (on := _run(runs, replicas, True)) and (off := _run(runs, replicas, False))
    ]
    if not ratios:
        return ""
    return (
        f"- **Batching on vs off** (requests/s): {', '.join(ratios)}. A batch shares only the "
        "targets' backbone pass (`prepare_many`); correspondence, colorization and encoding "
        "still run once per request, on the replica's one thread."
    )


def _autoscaling_finding(scaling: Results) -> str:
    config = scaling["colorizer"]

    def when(seconds: float | None, edge: str) -> str:
        return "never" if seconds is None else f"{seconds:.0f} s after {edge}"

    return (
        f"- **Autoscaling** ({config['min_replicas']}..{config['max_replicas']} replicas, "
        f"target {config['target_ongoing_requests']:g} ongoing request per replica, "
        f"`upscale_delay_s` {config['upscale_delay_s']:g}, `downscale_delay_s` "
        f"{config['downscale_delay_s']:g}; {scaling['concurrency']} clients for "
        f"{scaling['load_s']:g} s): a second replica was asked for "
        f"{when(scaling['upscale_decided_s'], 'the step began')} and running "
        f"{when(scaling['upscaled_s'], 'the step began')}; back to one "
        f"{when(scaling['downscaled_s'], 'the last request was answered')}. "
        f"{scaling['requests']} requests in the step, {scaling['throughput_rps']:.2f}/s."
    )


def _overhead_finding(overhead: Results) -> str:
    added = overhead["http_ms"] - overhead["in_process_ms"]
    server = overhead["server_ms"]
    return (
        f"- **HTTP overhead**: one {overhead['long_side']} px request with an uploaded reference "
        f"takes {overhead['http_ms']:.0f} ms over HTTP vs {overhead['in_process_ms']:.0f} ms "
        f"for the same stages in-process: {added:+.0f} ms (goal < {OVERHEAD_GOAL_MS:.0f} ms: "
        f"{_met(added < OVERHEAD_GOAL_MS)}; median of {overhead['repeats']}, interleaved). The "
        f"server's own timings: decode {server['decode']:.0f} ms, colorize "
        f"{server['colorize']:.0f} ms. With the reference retrieved (top=1) instead: "
        f"{overhead['retrieved_http_ms']:.0f} ms, of which retrieval "
        f"{overhead['retrieve_ms']:.0f} ms."
    )


def findings(results: Results) -> str:
    lines = [
        _scaling_finding(results["load"]),
        _batching_finding(results["load"]),
        _autoscaling_finding(results["autoscaling"]),
        _overhead_finding(results["overhead"]),
    ]
    start, end = (", ".join(f"{v:.2f}" for v in results["loadavg"][k]) for k in ("start", "end"))
    lines.append(f"- Load averages (1, 5, 15 min): {start} at the start, {end} at the end.")
    return "\n".join(line for line in lines if line)


def serving_section(results: Results | None, figures: list[Figure]) -> str:
    text = _opening(
        "## Serving: Ray Serve over HTTP (CPU)",
        "python -m benchmarks.serving",
        results,
        "The application of `chromaref serve` (FastAPI ingress, Retriever, Colorizer) on a "
        "private local Ray with one logical CPU per core, Serve's proxy on 127.0.0.1, the "
        "bundled index. Targets: bundled photos turned gray, long side 512 px, PNG, sent to "
        "`POST /v1/colorize` with top=1 (the Retriever picks the reference: the index holds the "
        "photos' color originals, so this measures speed, not quality). Each Colorizer replica "
        "reserves one CPU and runs one torch thread, one request at a time (batching off) or "
        "one batch at a time; the Retriever, ingress and proxy reserve none but share the same "
        "cores, with the client (threads and `requests`). Each configuration is deployed in "
        "place (`serve.run`, same app), warmed up with each target once per replica, then "
        "measured with a fixed number of requests at a fixed concurrency. Cores: CPU time of "
        "each process over the run, from /proc, divided by its duration; other processes: the "
        "machine's busy time minus ours (the machine is shared, so these numbers are noisy).\n\n",
    )
    if results is None:
        return text
    text += table(LOAD_HEADERS, load_rows(results["load"])) + "\n\n"
    text += "One request at a time, 1 replica, warm:\n\n"
    text += table(OVERHEAD_HEADERS, overhead_rows(results["overhead"])) + "\n\n"
    text += findings(results) + "\n\n"
    scaling = results["autoscaling"]
    path = DOCS_IMAGES / "serving_autoscaling.png"
    figures.append(Figure(path, lambda fig: _autoscaling_plot(fig, scaling), (8, 3.2)))
    return text + figures[-1].link() + "\n"


def _autoscaling_plot(fig: Any, scaling: Results) -> None:
    samples = scaling["samples"]
    t = [s["t"] for s in samples]
    ax = fig.add_subplot()
    ax.axvspan(scaling["step_start_s"], scaling["load_done_s"], color="C1", alpha=0.12,
               label="load (to the last answer)")  # fmt: skip
    ax.step(t, [s["running"] for s in samples], where="post", color="C0", label="running")
    asked = [s["running"] + s["starting"] for s in samples]
    ax.step(t, asked, where="post", color="C0", linestyle="--", label="running + starting")
    ax.set(xlabel="seconds", ylabel="Colorizer replicas", title="autoscaling under a step load")
    ax.set_yticks(range(scaling["colorizer"]["max_replicas"] + 2))
    load = ax.twinx()
    in_flight = [s["in_flight"] for s in samples]
    load.step(t, in_flight, where="post", color="C1", label="requests in flight")
    load.set(ylabel="requests in flight", ylim=(0, scaling["concurrency"] + 1))
    handles = [*ax.get_legend_handles_labels()[0], *load.get_legend_handles_labels()[0]]
    ax.legend(handles=handles, fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)
