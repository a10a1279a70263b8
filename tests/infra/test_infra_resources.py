"""The clusters in infra/kuberay have room for what the code asks for: every Serve replica,
Ray Train worker and descriptor actor fits a worker pod, and the largest scale the configs
allow fits the worker groups at their largest."""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Group:
    """One KubeRay group as Ray sees it: per-pod CPUs and GPUs, and its fewest and most pods."""

    name: str
    cpus: float
    gpus: float
    least: int
    most: int


def _cpu(quantity: str | int | float) -> float:
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _groups(spec: dict) -> list[Group]:
    """Head first. Ray takes num-cpus/num-gpus from rayStartParams, else the container limits."""
    head = spec["headGroupSpec"]
    groups = [(head, "head", 1, 1)]
    for worker in spec.get("workerGroupSpecs", []):
        least = worker.get("minReplicas", 0)
        assert least <= worker["replicas"] <= worker["maxReplicas"], worker["groupName"]
        groups.append((worker, worker["groupName"], least, worker["maxReplicas"]))
    found = []
    for group, name, least, most in groups:
        [container] = group["template"]["spec"]["containers"]
        limits = container["resources"]["limits"]
        requests = container["resources"].get("requests", limits)
        assert requests == limits, f"{name}: requests != limits (Ray counts the limits)"
        params = group.get("rayStartParams", {})
        cpus = _cpu(params.get("num-cpus", limits["cpu"]))
        gpus = float(params.get("num-gpus", limits.get("nvidia.com/gpu", 0)))
        assert cpus <= _cpu(limits["cpu"]), f"{name}: num-cpus above the pod's CPU limit"
        found.append(Group(name, cpus, gpus, least, most))
    return found


def _fits(cpus: float, gpus: float, group: Group) -> int:
    """How many actors of (cpus, gpus) one pod of `group` holds."""
    room = [group.cpus / cpus if cpus else math.inf, group.gpus / gpus if gpus else math.inf]
    return int(min(room)) if min(room) != math.inf else 1_000_000


def _place(actors: list[tuple[float, float, int]], groups: list[Group], *, at: str) -> None:
    """Greedy placement of (cpus, gpus, count) actors on the groups' pods (`at` = least or
    most); fails naming the first actor kind that does not fit."""
    free = [[g.cpus, g.gpus] for g in groups for _ in range(getattr(g, at))]
    for cpus, gpus, count in sorted(actors, key=lambda a: (-a[1], -a[0])):
        for _ in range(count):
            pod = next((p for p in free if p[0] >= cpus - 1e-9 and p[1] >= gpus - 1e-9), None)
            assert pod is not None, f"no room for an actor of {cpus} CPU, {gpus} GPU ({at})"
            pod[0] -= cpus
            pod[1] -= gpus


def _serve_actors(args: dict, cluster_has_gpu: bool) -> list[tuple[float, float, int]]:
    """(cpus, gpus, max replicas) of each deployment, as `chromaref.serving.app` asks."""
    from chromaref.serving.app import deployment_options
    from chromaref.serving.config import ServeConfig

    config = ServeConfig.model_validate(args)
    for section in ("colorizer", "retriever"):  # "auto": 1 GPU when the cluster has one
        scaling = getattr(config, section)
        if scaling.num_gpus == "auto":
            gpus = 1.0 if cluster_has_gpu else 0.0
            config = config.model_copy(
                update={section: scaling.model_copy(update={"num_gpus": gpus})}
            )
    actors = []
    for options in deployment_options(config).values():
        actor = options["ray_actor_options"]
        most = options.get("num_replicas") or options["autoscaling_config"]["max_replicas"]
        actors.append((actor["num_cpus"], actor["num_gpus"], most))
    return actors


def _one(by_kind, kind: str, name: str) -> dict:
    [doc] = [d for d in by_kind[kind] if d["metadata"]["name"] == name]
    return doc


@pytest.mark.parametrize("kind", ["RayService", "RayCluster"])
def test_the_serving_app_fits_at_its_largest(by_kind, kind):
    if kind == "RayService":
        service = _one(by_kind, "RayService", "chromaref")
        spec = service["spec"]["rayClusterConfig"]
        [app] = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    else:  # `serve deploy configs/serve.yaml` on the general cluster
        spec = _one(by_kind, "RayCluster", "chromaref")["spec"]
        [app] = yaml.safe_load((REPO / "configs/serve.yaml").read_text())["applications"]
    groups = _groups(spec)
    assert spec.get("enableInTreeAutoscaling") is True
    actors = _serve_actors(app["args"], cluster_has_gpu=any(g.gpus for g in groups))
    colorizer = max(actors, key=lambda a: a[1])
    assert colorizer[1] == 1.0, "the Colorizer must get a GPU on a GPU cluster"
    _place(actors, groups, at="most")
    # ... and one replica of each fits the cluster at its smallest: a GPU is there when the
    # app is built ("auto" sees it) and the service answers before any scale-up
    _place([(c, g, 1) for c, g, _ in actors], groups, at="least")


def test_the_training_job_fits_its_workers(by_kind):
    from chromaref.platform.settings import parse_assignment, read_yaml
    from chromaref.training.config import resolve_config

    job = _one(by_kind, "RayJob", "chromaref-train")
    argv = shlex.split(job["spec"]["entrypoint"])
    options = {"--workers": "workers", "--gpus-per-worker": "gpus_per_worker"}
    overrides = {options[a]: float(argv[i + 1]) for i, a in enumerate(argv) if a in options}
    overrides["workers"] = int(overrides["workers"])
    overrides.update(parse_assignment(argv[i + 1]) for i, a in enumerate(argv) if a == "--set")
    config = resolve_config(read_yaml(REPO / "configs/train.yaml"), overrides)
    assert config.gpus_per_worker >= 1, "the GPU training job trains on GPUs"
    groups = _groups(job["spec"]["rayClusterSpec"])
    assert all(g.least == g.most for g in groups), "a job's cluster does not autoscale"
    _place([(config.cpus_per_worker, config.gpus_per_worker, config.workers)], groups, at="least")
    gpus = sum(g.gpus * g.least for g in groups)
    assert gpus == config.workers * config.gpus_per_worker, "idle GPUs: workers != GPUs"


def test_the_index_job_gives_each_descriptor_actor_a_gpu_and_decoders(by_kind):
    """`descriptor_pool_size`: one 1-CPU, 1-GPU actor per GPU the cluster has when the build
    starts; decoding runs as 1-CPU tasks beside them."""
    job = _one(by_kind, "RayJob", "chromaref-index-build")
    spec = job["spec"]["rayClusterSpec"]
    groups = _groups(spec)
    assert not spec.get("enableInTreeAutoscaling"), "the pool is sized once, at start"
    gpu_groups = [g for g in groups if g.gpus]
    assert gpu_groups and all(g.least == g.most for g in gpu_groups)
    for group in gpu_groups:
        assert _fits(1.0, 1.0, group) >= 1
        decoders = group.cpus - group.gpus  # CPUs left beside the actors
        assert decoders >= 4, f"{group.name}: {decoders} CPUs to decode for {group.gpus} GPU"
    actors = int(sum(g.gpus * g.least for g in groups))
    _place([(1.0, 1.0, actors), (1.0, 0.0, actors)], groups, at="least")
