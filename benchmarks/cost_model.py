"""Sizing and cost on paper, from this project's measured rates (benchmarks/results/*.json and
docs/training.md) plus the assumptions it prints beside them (GPU rates, prices).

    python -m benchmarks.cost_model                    # the tables of docs/deploy.md
    python -m benchmarks.cost_model --gpu-images-per-s 2000 --price-gpu-node 0.98 --rps 50

Measured rates come from a shared 2-core CPU machine (no GPU); every GPU figure is an
assumption to replace with your own `python -m benchmarks.run --gpu` numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
GB = 1e9


@dataclass(frozen=True)
class Measured:
    """Rates measured here, each traceable to its record."""

    build_per_cpu: float  # images/s per CPU, Ray Data build end to end at corpus scale
    decode_per_cpu: float  # images/s per CPU, read + decode + checks + thumbnail
    hnsw_bytes_per_vector: float
    flat_bytes_per_vector: float
    hnsw_build_s: float  # at hnsw_build_n vectors, 2 threads
    hnsw_build_n: int
    dim: int
    request_cpu_s: float  # CPU-seconds one 512 px request costs the served app
    replica_rps: float  # 1 Colorizer replica (1 CPU), measured
    train_samples_per_worker: float  # 1 CPU worker, colornet_small, 128 px crops


def _load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def _training_rate() -> float:
    """docs/training.md's throughput table: the low end of 1 worker's samples/s."""
    text = (REPO / "docs" / "training.md").read_text()
    match = re.search(r"^\| 1 \| ([\d.]+)-([\d.]+) \|", text, re.M)
    if not match:
        raise SystemExit("docs/training.md has no throughput row for 1 worker")
    return float(match.group(1))


def _build_rate_per_cpu() -> float:
    """The Ray Data build at corpus scale (start-up amortised): the slower layout at the
    largest corpus of benchmarks/results/scale.json, per CPU of the machine that ran it."""
    from benchmarks.report_scale import largest_builds

    scale = _load("scale")
    rate = min(b["images_per_s"] for b in largest_builds(scale))
    return rate / scale["machine"]["cpu_count"]


def measured() -> Measured:
    throughput = _load("retrieval_throughput")
    best = throughput["throughput"]["best_images_per_s"]
    vectors = _load("vector_index")["results"]
    hnsw = max((r for r in vectors if r["kind"] == "hnsw"), key=lambda r: r["size"])
    flat = max((r for r in vectors if r["kind"] == "flat"), key=lambda r: r["size"])
    [one] = [r for r in _load("serving")["load"] if r["replicas"] == 1 and not r["batching"]]
    app_cores = sum(v for k, v in one["cores"].items() if k not in ("other", "client"))
    return Measured(
        build_per_cpu=_build_rate_per_cpu(),
        decode_per_cpu=best["decode"],  # measured on 1 core
        hnsw_bytes_per_vector=hnsw["index_bytes"] / hnsw["size"],
        flat_bytes_per_vector=flat["index_bytes"] / flat["size"],
        hnsw_build_s=hnsw["build_s"],
        hnsw_build_n=hnsw["size"],
        dim=hnsw["dim"],
        request_cpu_s=app_cores / one["throughput_rps"],
        replica_rps=one["throughput_rps"],
        train_samples_per_worker=_training_rate(),
    )


def stored_bytes_per_image(dim: int) -> float:
    """An index's files per image: semantic (float32) + luminance and local (float16) arrays,
    the same descriptors again in the Parquet shards, and FAISS (added by the caller)."""
    from chromaref.retrieval.descriptors import DescriptorConfig

    c = DescriptorConfig()
    arrays = 4 * dim + 2 * (1 + c.hist_cells**2) * c.hist_bins + 2 * c.local_cells**2 * c.local_dim
    return 2 * arrays


def ivfpq_bytes_per_vector(count: int, dim: int, pca_dim: int | None) -> float:
    """Bytes per vector of the IVF-PQ index a build of `count` would make (codes, SQ8 re-rank,
    id), from its FAISS factory string; not measured at this scale."""
    from chromaref.retrieval.vector_index import VectorIndexConfig, factory_string

    index_dim = pca_dim or dim
    text = factory_string("ivfpq", dim, index_dim, count, VectorIndexConfig().train_sample)
    m, bits = map(int, re.search(r"PQ(\d+)x(\d+)", text).groups())
    return m * bits / 8 + index_dim + 8


def hnsw_build_hours(m: Measured, count: int, threads: int) -> float:
    """n log n from the measured build, linear in threads (an optimistic extrapolation)."""
    scale = count * math.log(count) / (m.hnsw_build_n * math.log(m.hnsw_build_n))
    return m.hnsw_build_s * scale * 2 / threads / 3600


def _table(headers: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in rows])


def report(m: Measured, a: argparse.Namespace) -> str:
    node_decode = (a.gpu_node_cpus - 1) * m.decode_per_cpu  # 1 CPU for the descriptor actor
    gpu_node_rate = min(a.gpu_images_per_s, node_decode)
    cpu_node_rate = a.cpu_node_cpus * m.build_per_cpu
    rows = []
    for count in (1_280_000, 100_000_000):
        for name, rate, price in (
            (f"CPU nodes ({a.cpu_node_cpus} vCPU)", cpu_node_rate, a.price_cpu_node),
            (f"GPU nodes (1 GPU, {a.gpu_node_cpus} vCPU)", gpu_node_rate, a.price_gpu_node),
        ):
            node_hours = count / rate / 3600
            rows.append(
                [
                    f"{count:,}",
                    name,
                    f"{rate:,.0f}",
                    f"{node_hours:,.1f}",
                    f"{node_hours / a.nodes:,.1f} h on {a.nodes}",
                    f"${node_hours * price:,.0f}",
                ]
            )
    build = _table(
        ["images", "descriptor nodes", "images/s per node", "node-hours", "wall", "cost"], rows
    )
    memory = []
    for count in (1_280_000, 100_000_000):
        kind = "hnsw" if count <= 2_000_000 else "ivfpq"
        for pca in (None, 256) if kind == "ivfpq" else (None,):
            per = (
                m.hnsw_bytes_per_vector
                if kind == "hnsw"
                else ivfpq_bytes_per_vector(count, m.dim, pca)
            )
            disk = count * (stored_bytes_per_image(m.dim) + per) / GB
            label = kind + (f" --pca-dim {pca}" if pca else "")
            memory.append([f"{count:,}", label, f"{count * per / GB:,.1f}", f"{disk:,.0f}"])
    sizes = _table(["images", "FAISS index", "index RAM GB", "index files GB"], memory)
    hours = hnsw_build_hours(m, 1_280_000, a.head_threads)
    samples = a.train_steps * a.train_batch * a.train_workers
    cpu_h = samples / (m.train_samples_per_worker * a.train_workers) / 3600
    gpu_h = samples / (a.gpu_samples_per_s * a.train_workers) / 3600
    training = (
        f"Training {a.train_steps:,} steps x {a.train_batch} pairs x {a.train_workers} workers "
        f"({samples:,} samples): ~{cpu_h:,.0f} h on {a.train_workers} 1-CPU workers at the "
        f"measured rate (128 px crops; configs/train.yaml's 256 px costs more), ~{gpu_h:,.1f} h "
        f"(${gpu_h * a.train_workers * a.price_gpu_node:,.0f}) on {a.train_workers} GPUs at an "
        f"assumed {a.gpu_samples_per_s:g} samples/s per GPU worker"
    )
    serving = []
    for rps in a.rps:
        cpus = math.ceil(rps * m.request_cpu_s / a.utilisation)
        gpus = math.ceil(rps / (a.gpu_requests_per_s * a.utilisation))
        cpu_cost = cpus / a.cpu_node_cpus * a.price_cpu_node
        serving.append([rps, cpus, f"${cpu_cost:,.2f}", gpus, f"${gpus * a.price_gpu_node:,.2f}"])
    serve = _table(
        ["requests/s", "CPUs (measured rate)", "CPU $/h", "GPU replicas (assumed rate)", "GPU $/h"],
        serving,
    )
    return "\n".join(
        [
            "Measured here (2 shared vCPUs, no GPU):",
            f"- index build, Ray Data end to end at corpus scale: {m.build_per_cpu:.2f} images/s "
            "per vCPU",
            f"- decode alone: {m.decode_per_cpu:.1f} images/s per vCPU",
            f"- FAISS HNSW: {m.hnsw_bytes_per_vector / 1e3:.2f} KB per vector "
            f"({m.hnsw_bytes_per_vector * 1e6 / GB:.2f} GB per million), flat "
            f"{m.flat_bytes_per_vector * 1e6 / GB:.2f} GB per million; built "
            f"{m.hnsw_build_n:,} in {m.hnsw_build_s:.0f} s on 2 threads",
            f"- serving: {m.request_cpu_s:.2f} CPU-s per 512 px request, "
            f"{m.replica_rps:.2f} requests/s from one 1-CPU replica",
            f"- training: {m.train_samples_per_worker:.1f} samples/s per 1-CPU worker "
            "(docs/training.md)",
            "Assumed (not measured here):",
            f"- GPU descriptors {a.gpu_images_per_s:,.0f} images/s per GPU; GPU serving "
            f"{a.gpu_requests_per_s:g} requests/s per replica; GPU training "
            f"{a.gpu_samples_per_s:g} samples/s per worker; utilisation {a.utilisation:g}",
            f"- prices per hour: GPU node ${a.price_gpu_node}, {a.cpu_node_cpus}-vCPU node "
            f"${a.price_cpu_node}",
            "",
            "Index build (descriptors; the FAISS build on the head comes on top):",
            build,
            "",
            f"FAISS HNSW build of 1,280,000 on {a.head_threads} head threads: "
            f"~{hours * 60:.0f} min (n log n from the measured build, linear in threads: "
            "an optimistic extrapolation)",
            "",
            training,
            "",
            "Index size (RAM: what the Retriever holds; files: arrays, shards and FAISS):",
            sizes,
            "",
            "Serving 512 px requests:",
            serve,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu-images-per-s", type=float, default=1500.0)
    parser.add_argument("--gpu-requests-per-s", type=float, default=10.0)
    parser.add_argument("--gpu-samples-per-s", type=float, default=100.0)
    parser.add_argument("--gpu-node-cpus", type=int, default=16)
    parser.add_argument("--cpu-node-cpus", type=int, default=32)
    parser.add_argument("--price-gpu-node", type=float, default=1.32, help="$/h, 1-GPU node")
    parser.add_argument("--price-cpu-node", type=float, default=1.43, help="$/h, CPU node")
    parser.add_argument("--nodes", type=int, default=4, help="descriptor nodes in parallel")
    parser.add_argument("--head-threads", type=int, default=16)
    parser.add_argument("--utilisation", type=float, default=0.7)
    parser.add_argument("--rps", type=float, nargs="+", default=[1, 10, 100])
    parser.add_argument("--train-steps", type=int, default=20_000)  # infra/kuberay/rayjob-train
    parser.add_argument("--train-batch", type=int, default=8)  # configs/train.yaml
    parser.add_argument("--train-workers", type=int, default=4)
    print(report(measured(), parser.parse_args()))


if __name__ == "__main__":
    main()
