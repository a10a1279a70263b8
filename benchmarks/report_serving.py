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
    cpu = {role: cores * two["seconds"] / two["requests"] for role, cores in two["cores"].items()}
    app = sum(cpu[role] for role in APP_ROLES)
    # One replica may have a core to itself while the rest of the app runs on the other; two
    # replicas share both cores with all of it: at best 2/app vs 1/Colorizer requests/s.
    cap = 2 * cpu["Colorizer"] / app
    starved = " (the one-replica run was short of its core too)" if ratio > cap else ""
    return (
        f"- **2 Colorizer replicas vs 1**: {ratio:.2f}x the requests/s (goal {RATIO_GOAL}x: "
        f"{_met(ratio >= RATIO_GOAL)}). The Colorizers got {one['cores']['Colorizer']:.2f} "
        f"cores with one replica and {two['cores']['Colorizer']:.2f} with two, while other "
        f"processes on the machine used {one['cores']['other']:.2f} and "
        f"{two['cores']['other']:.2f}. Even on two idle cores the ratio is capped near "
        f"{cap:.2f}x{starved}: of the {app:.2f} CPU-s a request costs the app, "
        f"{cpu['Colorizer']:.2f} are the Colorizer's, and the Retriever ({cpu['Retriever']:.2f}:"
        f" the target's descriptors and the search), ingress and proxy "
        f"({cpu['Gateway'] + cpu['proxy']:.2f}), Ray's own processes ({cpu['Ray']:.2f}) and the "
        f"client ({cpu['client']:.2f}) run on the cores the second replica needs."
    )


def _batching_finding(runs: list[Results]) -> str:
    ratios = [
        f"{replicas} replica(s) {on['throughput_rps'] / off['throughput_rps']:.2f}x (other "
        f"processes: {off['cores']['other']:.2f} cores off, {on['cores']['other']:.2f} on)"
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
    local, server = overhead["in_process_ms"], overhead["server_ms"]
    added = overhead["http_ms"] - local
    return (
        f"- **HTTP overhead**: one {overhead['long_side']} px request with an uploaded reference "
        f"takes {overhead['http_ms']:.0f} ms over HTTP vs {local:.0f} ms "
        f"for the same stages in-process: {added:+.0f} ms (goal < {OVERHEAD_GOAL_MS:.0f} ms: "
        f"{_met(added < OVERHEAD_GOAL_MS)}; median of {overhead['repeats']}, interleaved). By "
        f"the server's own timings (decode {server['decode']:.0f} ms, Colorizer call "
        f"{server['colorize']:.0f} ms), about {server['colorize'] - local + server['decode']:.0f}"
        " ms of it is inside the Colorizer call (Ray handle, passing arrays and results, the "
        f"replica's thread) and {overhead['http_ms'] - server['decode'] - server['colorize']:.0f}"
        " ms in the proxy, ingress, multipart upload and base64 JSON answer. With the "
        "reference retrieved (top=1) instead: "
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
        "reserves one CPU and runs one torch thread, one request at a time (batching off, "
        "`max_ongoing_requests` 1) or one batch of up to 4 at a time (batching on, "
        "`max_ongoing_requests` 4); the Retriever, ingress and proxy reserve none but share "
        "the same cores, with the client (threads and `requests`). Each configuration is "
        "deployed in place (`serve.run`, same app), warmed up with each target once per "
        "replica, then measured with a fixed number of requests at a fixed concurrency. Cores: "
        "CPU time of each process over the run, from /proc, divided by its duration; Ray: our "
        "Ray's own processes (raylet, GCS, Serve controller); other processes: the machine's "
        "busy time minus ours (the machine is shared, so these numbers are noisy).\n\n",
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
