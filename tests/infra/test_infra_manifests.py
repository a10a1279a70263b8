"""infra/ parses, names the pinned Ray version everywhere, and its Serve config is
configs/serve.yaml's application: fast checks, no docker, kubectl or network."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import ray
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
IMAGE = re.compile(r"^chromaref:(?P<project>[^-]+)-ray(?P<ray>[0-9.]+)-(?P<variant>cpu|gpu)$")
# What the RayService may change from configs/serve.yaml's application, and why: the index in
# the object store, and GPUs given outright ("auto" looks before the GPU group has scaled up).
CLUSTER_OVERRIDES = {"index", "colorizer.num_gpus"}


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _ray_specifier() -> SpecifierSet:
    for requirement in _pyproject()["project"]["dependencies"]:
        match = re.match(r"ray\[[^\]]*\](.*)", requirement)
        if match:
            return SpecifierSet(match.group(1))
    raise AssertionError("pyproject.toml does not pin ray[...]")


def _walk(node, key: str):
    """Every value stored under `key`, anywhere in a YAML tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _walk(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, key)


def _groups(cluster_spec: dict) -> list[dict]:
    return [cluster_spec["headGroupSpec"], *cluster_spec.get("workerGroupSpecs", [])]


def _cluster_specs(by_kind) -> list[dict]:
    return (
        [doc["spec"] for doc in by_kind.get("RayCluster", [])]
        + [doc["spec"]["rayClusterSpec"] for doc in by_kind.get("RayJob", [])]
        + [doc["spec"]["rayClusterConfig"] for doc in by_kind.get("RayService", [])]
    )


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_every_infra_yaml_parses_and_kuberay_has_each_kind(manifests, launcher):
    for path in sorted((REPO / "infra").rglob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert docs and all(isinstance(d, dict) for d in docs), path
    kinds = sorted(doc["kind"] for docs in manifests.values() for doc in docs)
    assert kinds == ["RayCluster", "RayJob", "RayJob", "RayService"]
    assert all(doc["apiVersion"] == "ray.io/v1" for docs in manifests.values() for doc in docs)
    assert launcher["provider"]["type"] == "aws"


def test_the_installed_ray_is_the_pinned_one():
    assert Version(ray.__version__) in _ray_specifier(), (ray.__version__, _ray_specifier())


def test_every_image_and_ray_version_is_the_pinned_ray(by_kind, dockerfile):
    pinned = ray.__version__
    project = _pyproject()["project"]["version"]
    for spec in _cluster_specs(by_kind):
        assert spec["rayVersion"] == pinned
        for group in _groups(spec):
            for container in group["template"]["spec"]["containers"]:
                match = IMAGE.match(container["image"])
                assert match, f"{container['image']} is not chromaref:<version>-ray<ray>-<cpu|gpu>"
                assert match["ray"] == pinned and match["project"] == project
                limits = container["resources"]["limits"]
                has_gpu = float(limits.get("nvidia.com/gpu", 0)) > 0
                assert match["variant"] == ("gpu" if has_gpu else "cpu"), container["image"]
    assert dockerfile.args["RAY_VERSION"] == pinned
    bases = [line.split()[0] for line in dockerfile.all("FROM")]
    assert "rayproject/ray:${RAY_VERSION}-${PYTHON_TAG}" in bases
    assert "rayproject/ray:${RAY_VERSION}-${PYTHON_TAG}-gpu" in bases
    python = _pyproject()["project"]["requires-python"]
    tag = dockerfile.args["PYTHON_TAG"]  # py311 -> 3.11
    assert Version(f"{tag[2]}.{tag[3:]}") in SpecifierSet(python)


def test_the_image_builds_the_extra_of_its_variant(dockerfile):
    assert dockerfile.args["VARIANT"] in {"cpu", "gpu"}
    assert set(_pyproject()["project"]["optional-dependencies"]) >= {"cpu", "gpu"}
    assert dockerfile.all("FROM")[-1] == "base-${VARIANT}"
    [install] = [run for run in dockerfile.all("RUN") if "pip install" in run]
    assert '".[${VARIANT}]"' in install


def _serve_config(by_kind) -> dict:
    [service] = by_kind["RayService"]
    return yaml.safe_load(service["spec"]["serveConfigV2"])


def test_serve_configs_validate_against_ray_serve_schema(by_kind):
    from ray.serve.schema import ServeDeploySchema

    for config in (_serve_config(by_kind), yaml.safe_load((REPO / "configs/serve.yaml").open())):
        schema = ServeDeploySchema.model_validate(config)
        assert [app.import_path for app in schema.applications] == ["chromaref.serving.app:build"]


def test_rayservice_app_is_serve_yaml_with_only_the_cluster_overrides(by_kind):
    from chromaref.serving.config import ServeConfig

    ours = _serve_config(by_kind)
    local = yaml.safe_load((REPO / "configs/serve.yaml").read_text())
    assert {k: v for k, v in ours.items() if k != "applications"} == {
        k: v for k, v in local.items() if k != "applications"
    }
    [app], [local_app] = ours["applications"], local["applications"]
    assert {k: v for k, v in app.items() if k != "args"} == {
        k: v for k, v in local_app.items() if k != "args"
    }
    flat, local_flat = _flatten(app["args"]), _flatten(local_app["args"])
    changed = {k for k in flat.keys() | local_flat.keys() if flat.get(k) != local_flat.get(k)}
    assert changed == CLUSTER_OVERRIDES
    assert flat["index"].startswith("s3://")
    settings = ServeConfig.model_validate(app["args"])  # the app's own settings model
    assert settings.colorizer.num_gpus == 1


def test_launcher_config_passes_ray_up_validation(launcher):
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(launcher)  # what `ray up` does first: defaults, then the schema
    validate_config(prepared)
    types = prepared["available_node_types"]
    assert types["gpu_worker"]["resources"]["GPU"] >= 1
    assert types["gpu_worker"]["max_workers"] > types["gpu_worker"]["min_workers"]
    assert types[prepared["head_node_type"]]["resources"].get("GPU", 0) == 0


def test_no_other_ray_version_is_named_anywhere_in_infra():
    """A second x.y.z anywhere (a forgotten tag, a stale rayVersion or comment) would split a
    cluster between Ray versions; the project's own version is the only other one allowed."""
    text = "\n".join(p.read_text() for p in sorted((REPO / "infra").rglob("*")) if p.is_file())
    named = set(re.findall(r"(?<![\d.])\d+\.\d+\.\d+(?![\d.])", text))
    assert named == {ray.__version__, _pyproject()["project"]["version"]}, named


def test_the_image_builds_the_bundled_index_where_chromaref_looks(dockerfile):
    """The offline assets: the build step calls a function that exists, into the folder the
    cache variable names, and runs the offline demo."""
    import importlib

    from chromaref.retrieval.storage import CACHE_ENV

    env = " ".join(dockerfile.all("ENV"))
    assert re.search(rf"\b{CACHE_ENV}=/\S+", env), f"the image does not set {CACHE_ENV}"
    [build] = [run for run in dockerfile.all("RUN") if "python -c" in run]
    snippet = re.search(r'python -c "([^"]+)"', build).group(1)
    calls = re.findall(r"from ([\w.]+) import (\w+); (\w+)\(\)", snippet)
    assert calls and all(name == called for _, name, called in calls), snippet
    for module, name, _ in calls:
        assert callable(getattr(importlib.import_module(module), name))
    assert "chromaref demo" in build
