"""The page's "one node or two" section: an index build and a short training run on 1 node of
1 CPU vs 2 nodes of 1 CPU each; every number from results/cluster_scaling.json."""

from __future__ import annotations

from benchmarks._common import table
from benchmarks.report import Results, _opening

HEADERS = ["layout", "index build, images/s", "training, samples/s"]
METHOD = (
    "A private Ray cluster of `ray.cluster_utils.Cluster` nodes on this machine (own "
    "`RAY_TMPDIR`): the same index build over the bundled photos and the same short training "
    "run (a small ColorNet) on each layout, best of the interleaved rounds; the 2-node runs "
    "spread their work over both nodes (2 descriptor actors, 2 DDP workers of 1 CPU each)."
)


def cluster_section(results: Results | None) -> str:
    text = _opening("## One node or two", "python -m benchmarks.cluster_scaling", results, METHOD)
    if results is None:
        return text
    best = results["best"]
    rows = [
        [layout, f"{r['index_images_per_s']:.2f}", f"{r['training_samples_per_s']:.2f}"]
        for layout, r in best.items()
    ]
    speedup = results["speedup_2_nodes"]
    loads = [load for run in results["runs"] for load in run["loadavg_1m"]]
    return (
        f"{text}\n\n{table(HEADERS, rows)}\n\n"
        f"2 nodes / 1 node: index build {speedup['index_images_per_s']:.2f}x, training "
        f"{speedup['training_samples_per_s']:.2f}x. Bound: {results['bound']}; the load "
        f"average was {min(loads):.0f}-{max(loads):.0f} during the runs (other jobs), so "
        "these ratios are noisy; per-core and per-GPU rates for real clusters are in "
        "[deploy.md](deploy.md).\n"
    )
