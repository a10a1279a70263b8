"""Ray Serve over HTTP: throughput by replicas and batching, autoscaling under a step load, and
what serving adds to one colorization.

    python -m benchmarks.serving            # ~7 min on 2 CPU cores; writes results/serving.json
    python -m benchmarks.serving --quick    # fewer requests, a shorter step (~5 min, smoke)

The application is `chromaref.serving.app.build` with the bundled index, on a private local
Ray with one logical CPU per core and Serve's proxy on a free 127.0.0.1 port. Targets are
bundled photos turned gray, long side 512 px, sent as PNG to POST /v1/colorize with top=1.

1. Load: a fixed number of requests at a fixed concurrency, after a warm-up, for 1 and 2
   Colorizer replicas (one CPU, one torch thread each) with batching off and on, each
   configuration deployed in place; with each process's CPU time over the run, from /proc.
2. Autoscaling: 1..2 replicas; idle, a step of closed-loop load, idle again; the Colorizer's
   running replicas sampled every second from `serve.status()`.
3. Overhead: one request with an uploaded reference over HTTP vs the same stages in this
   process (decode both, prepare both, colorize, PNG encode), interleaved, 1 replica, warm.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import requests
from PIL import Image

from benchmarks._common import CLOCK_TICKS, descends_from, processes, table, write_json
from benchmarks.report_serving import (
    APP_ROLES,
    LOAD_HEADERS,
    OVERHEAD_HEADERS,
    findings,
    load_rows,
    overhead_rows,
)
from benchmarks.speed import REFERENCE, TARGET
from chromaref.serving.app import APP_NAME

LONG_SIDE = 512
CONCURRENCY = 4
BATCH = 4
TIMEOUT_S = 120
CONFIGS = ((1, False), (1, True), (2, False), (2, True))  # (Colorizer replicas, batching)
AUTOSCALING = {
    "min_replicas": 1,
    "max_replicas": 2,
    "target_ongoing_requests": 1,
    "upscale_delay_s": 2,
    "downscale_delay_s": 10,
}


def settings(replicas: int, batching: bool, **autoscaling: float) -> dict[str, Any]:
    """CPU only; one request at a time per Colorizer replica (so that one replica is one
    core's work), or with batching one batch of up to BATCH requests."""
    colorizer = {"min_replicas": replicas, "max_replicas": replicas, **autoscaling}
    return {
        "colorizer": {
            **colorizer,
            "num_cpus": 1,
            "num_gpus": 0,
            "max_ongoing_requests": BATCH if batching else 1,
        },
        "retriever": {"num_cpus": 0, "num_gpus": 0},  # shares the cores, reserves none
        "batching": {"enabled": batching, "max_batch_size": BATCH},
    }


# -- the client ------------------------------------------------------------------------------


def gray_png(path: Path, long_side: int = LONG_SIDE) -> bytes:
    """A bundled photo turned gray and resized to `long_side`, as a PNG upload."""
    with Image.open(path) as image:
        gray = image.convert("L")
    scale = long_side / max(gray.size)
    size = (round(gray.width * scale), round(gray.height * scale))
    buffer = io.BytesIO()
    gray.resize(size, Image.Resampling.BICUBIC).save(buffer, format="PNG")
    return buffer.getvalue()


def post(url: str, files: list, top: int = 1) -> tuple[float, dict[str, Any]]:
    """One colorize request: its latency (s, until the whole answer is in) and the answer."""
    start = time.perf_counter()
    response = requests.post(url, files=files, data={"top": str(top)}, timeout=TIMEOUT_S)
    seconds = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"POST {url}: {response.status_code} {response.text[:300]}")
    return seconds, response.json()


def _target(targets: list[tuple[str, bytes]], i: int) -> list:
    name, png = targets[i % len(targets)]
    return [("image", (f"{name}.png", png))]


class InFlight:
    """Requests sent and not answered yet: the load, as sampled for the autoscaling plot."""

    def __init__(self) -> None:
        self.count = self.answered = 0
        self._lock = threading.Lock()

    def post(self, url: str, files: list) -> None:
        with self._lock:
            self.count += 1
        try:
            post(url, files)
        finally:
            with self._lock:
                self.count -= 1
                self.answered += 1


# -- CPU time by process, from /proc ---------------------------------------------------------


def _role(pid: int, name: str, parents: dict[int, int]) -> str | None:
    """What a process is to this benchmark: a Serve deployment, the proxy, the rest of our
    Ray, this client; None when it is not ours (other users of the machine)."""
    if pid == os.getpid():
        return "client"
    if not descends_from(pid, os.getpid(), parents):
        return None
    if name.startswith(f"ray::ServeReplica:{APP_NAME}:"):
        # "...:Colorizer", or "...:Colorizer.handle_request_with_rejection" while it runs one
        return name.rsplit(":", 1)[1].split(".", 1)[0]
    return "proxy" if name == "ray::ProxyActor" else "Ray"


def _busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores, from /proc/stat)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def cpu_snapshot() -> tuple[float, dict[int, tuple[str | None, float]]]:
    found = processes()
    parents = {pid: parent for pid, (parent, _, _) in found.items()}
    roles = {pid: (_role(pid, name, parents), cpu) for pid, (_, name, cpu) in found.items()}
    return _busy_seconds(), roles


def cores_used(before, after, seconds: float) -> dict[str, float]:
    """Cores each role used between two snapshots; "other": the machine's busy rest."""
    cores = dict.fromkeys(APP_ROLES, 0.0)
    earlier = {pid: cpu for pid, (_, cpu) in before[1].items()}
    for pid, (role, cpu) in after[1].items():
        if role is not None:
            cores[role] = cores.get(role, 0.0) + cpu - earlier.get(pid, 0.0)
    ours = sum(cores.values())
    cores["other"] = max(0.0, after[0] - before[0] - ours)
    return {role: cpu / seconds for role, cpu in cores.items()}


# -- the measurements ------------------------------------------------------------------------


def load_run(url: str, targets: list[tuple[str, bytes]], count: int, concurrency: int) -> dict:
    """`count` requests, `concurrency` at a time: throughput, latency, cores by process."""
    before, start = cpu_snapshot(), time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(lambda i: post(url, _target(targets, i))[0], range(count)))
    seconds = time.perf_counter() - start
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]) * 1000.0
    return {
        "requests": count,
        "concurrency": concurrency,
        "seconds": seconds,
        "throughput_rps": count / seconds,
        "latency_ms": {"p50": p50, "p95": p95, "p99": p99},
        "cores": cores_used(before, cpu_snapshot(), seconds),
    }


def step_load(url: str, targets: list, idle_s: float, load_s: float, tail_s: float) -> dict:
    """Idle, CONCURRENCY closed-loop clients for `load_s`, idle again; the Colorizer's
    replicas sampled every second. Times in seconds from the start."""
    from ray import serve

    in_flight, samples, stop = InFlight(), [], threading.Event()
    origin = time.perf_counter()

    def sample() -> None:
        while not stop.is_set():
            status = serve.status().applications[APP_NAME].deployments["Colorizer"]
            states = status.replica_states
            samples.append({
                "t": time.perf_counter() - origin,
                "running": states.get("RUNNING", 0),
                "starting": states.get("STARTING", 0),
                "in_flight": in_flight.count,
            })  # fmt: skip
            stop.wait(1.0)

    def client(first: int) -> None:
        i = first
        while time.perf_counter() < step_end:
            in_flight.post(url, _target(targets, i))
            i += CONCURRENCY

    sampler = threading.Thread(target=sample)
    sampler.start()
    time.sleep(idle_s)
    step_start = time.perf_counter() - origin
    step_end = origin + step_start + load_s
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(client, range(CONCURRENCY)))
    load_done = time.perf_counter() - origin
    time.sleep(tail_s)
    stop.set()
    sampler.join()

    def first(after: float, ok) -> float | None:
        return next((s["t"] - after for s in samples if s["t"] >= after and ok(s)), None)

    top = AUTOSCALING["max_replicas"]
    upscaled = first(step_start, lambda s: s["running"] >= top)
    downscaled = first(load_done, lambda s: s["running"] + s["starting"] <= 1)
    return {
        "colorizer": AUTOSCALING,
        "concurrency": CONCURRENCY,
        "load_s": load_s,
        "step_start_s": step_start,
        "load_done_s": load_done,
        "requests": in_flight.answered,
        "throughput_rps": in_flight.answered / (load_done - step_start),
        "upscale_decided_s": first(step_start, lambda s: s["running"] + s["starting"] >= top),
        "upscaled_s": upscaled,
        "downscaled_s": None if upscaled is None else downscaled,
        "samples": samples,
    }


def overhead(url: str, repeats: int) -> dict:
    """One request over HTTP vs the same stages in this process, alternately, medians."""
    import torch

    from chromaref.platform.assets import photo
    from chromaref.platform.config import MatchingConfig, PipelineConfig
    from chromaref.platform.pipeline import ColorizationPipeline
    from chromaref.serving.config import ServeConfig
    from chromaref.serving.deployments import encode_image
    from chromaref.serving.http import decode_upload

    config = ServeConfig()
    torch.set_num_threads(1)  # like a replica with num_cpus 1
    pipeline = ColorizationPipeline(
        PipelineConfig(matching=MatchingConfig(working_size=config.working_size)), device="cpu"
    )
    target, reference = gray_png(photo(TARGET).path), photo(REFERENCE).path.read_bytes()
    uploads = [("image", ("target.png", target)), ("reference", ("reference.jpg", reference))]
    retrieved = [("image", ("target.png", target))]

    def in_process() -> float:
        start = time.perf_counter()
        target_rgb = decode_upload(target, "target.png", config.limits.max_pixels)
        reference_rgb = decode_upload(reference, "reference.jpg", config.limits.max_pixels)
        prepared = pipeline.prepare_many([target_rgb])[0]
        output = pipeline.colorize(prepared, pipeline.prepare(reference_rgb, full_l=False))
        encode_image(output.rgb, "png")
        return time.perf_counter() - start

    runs = [(in_process(), post(url, uploads), post(url, retrieved)) for _ in range(repeats + 1)]
    runs = runs[1:]  # the first of each warms up

    def median_ms(values) -> float:
        return statistics.median(values) * 1000.0

    return {
        "repeats": repeats,
        "long_side": LONG_SIDE,
        "target": TARGET,
        "reference": REFERENCE,
        "in_process_ms": median_ms(local for local, _, _ in runs),
        "http_ms": median_ms(http[0] for _, http, _ in runs),
        "server_ms": {
            stage: median_ms(http[1]["seconds"][stage] for _, http, _ in runs)
            for stage in ("decode", "colorize")
        },
        "retrieved_http_ms": median_ms(found[0] for _, _, found in runs),
        "retrieve_ms": median_ms(found[1]["seconds"]["retrieve"] for _, _, found in runs),
    }


# -- the application -------------------------------------------------------------------------


def start_serve() -> str:
    """A private local Ray and Serve's proxy on a free 127.0.0.1 port; returns the base URL."""
    from ray import serve

    from chromaref.retrieval.runtime import ensure_ray

    # Ray's workers inherit it: idle OpenMP threads sleep instead of spinning on shared cores
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    ensure_ray(num_cpus=os.cpu_count(), log_to_driver=False)
    logging.getLogger("ray.serve").setLevel(logging.WARNING)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    return f"http://127.0.0.1:{port}/v1/colorize"


def deploy(app_settings: dict[str, Any]) -> float:
    """(Re)deploy the application in place; returns the seconds until it is running."""
    from ray import serve

    from chromaref.serving.app import build

    start = time.perf_counter()
    serve.run(build(app_settings), name=APP_NAME, route_prefix="/")
    return time.perf_counter() - start


def measure(quick: bool) -> dict[str, Any]:
    from chromaref.platform.assets import photos

    count, repeats = (8, 3) if quick else (32, 15)
    step = (3, 12, 20) if quick else (5, 30, 25)  # idle, load, idle (s)
    chosen = photos()[: 4 if quick else 8]
    targets = [(p.name, gray_png(p.path)) for p in chosen]
    url = start_serve()
    results: dict[str, Any] = {"load": []}
    for replicas, batching in CONFIGS:
        deploy_s = deploy(settings(replicas, batching))
        load_run(url, targets, len(targets) * replicas, CONCURRENCY)  # warm-up
        run = load_run(url, targets, count, CONCURRENCY)
        results["load"].append(
            {"replicas": replicas, "batching": batching, "max_batch_size": BATCH,
             "settings": settings(replicas, batching), "deploy_s": deploy_s, **run}
        )  # fmt: skip
        print(f"{replicas} replica(s), batching {batching}: {run['throughput_rps']:.2f}/s")
        if replicas == 1 and not batching:  # the overhead's app: 1 replica, warm
            results["overhead"] = overhead(url, repeats)
    deploy(settings(1, False, **AUTOSCALING))
    results["autoscaling"] = step_load(url, targets, *step)
    results["targets"] = {"photos": [p.name for p in chosen], "long_side": LONG_SIDE}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, shorter step")
    args = parser.parse_args()
    loadavg_start = os.getloadavg()
    try:
        results = measure(args.quick)
    finally:
        import ray
        from ray import serve

        if ray.is_initialized():
            serve.shutdown()
            ray.shutdown()
    results["loadavg"] = {"start": loadavg_start, "end": os.getloadavg()}
    print("\n" + table(LOAD_HEADERS, load_rows(results["load"])))
    print("\n" + table(OVERHEAD_HEADERS, overhead_rows(results["overhead"])))
    print("\n" + findings(results))
    print(f"\nwrote {write_json('serving', results)}")


if __name__ == "__main__":
    main()
