"""The package layout promises of DESIGN.md: no stdlib shadowing, light core, exact pins."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAPPED_ROOTS = ["platform", "retrieval", "evaluation", "training", "serving", "cli"]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_stdlib_platform_is_not_shadowed_from_repo_root():
    result = _run("import platform, torch; print(platform.system(), platform.__file__)")
    assert result.returncode == 0, result.stderr
    assert str(ROOT) not in result.stdout.split()[-1]


def test_mapped_roots_have_no_init():
    for name in MAPPED_ROOTS:
        assert not (ROOT / name / "__init__.py").exists(), f"{name}/__init__.py shadows imports"


@pytest.mark.slow
def test_core_does_not_import_heavy_platform_libraries():
    code = (
        "import sys, chromaref.platform.pipeline, chromaref.platform.models;"
        "heavy = [m for m in ('ray', 'faiss', 'mlflow') if m in sys.modules];"
        "print(heavy); assert not heavy"
    )
    result = _run(code)
    assert result.returncode == 0, result.stdout + result.stderr


def test_torch_pins_and_packages_listed():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = project["project"]["dependencies"]
    assert "torch==2.14.1" in deps and "torchvision==0.29.1" in deps
    listed = set(project["tool"]["setuptools"]["packages"])
    mapping = project["tool"]["setuptools"]["package-dir"]
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            sub = init.parent.relative_to(ROOT / folder).parts
            assert ".".join((package, *sub)) in listed, f"{init.parent} is not packaged"


def test_console_script_help():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "chromaref"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for command in ("colorize", "demo", "backbones", "index", "eval", "train", "serve"):
        assert command in result.stdout


def test_package_data_globs_match_files_and_ship_the_model():
    from chromaref.platform.models.colornet import SHIPPED_MODEL

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping = project["tool"]["setuptools"]["package-dir"]
    shipped = set()
    for package, patterns in project["tool"]["setuptools"]["package-data"].items():
        root = max((r for r in mapping if package.startswith(r)), key=len)
        folder = ROOT / mapping[root] / package[len(root) :].lstrip(".").replace(".", "/")
        for pattern in patterns:
            matched = list(folder.glob(pattern))
            assert matched, f"{package}: {pattern} matches no file in {folder}"
            shipped.update(p.resolve() for p in matched)
    assert SHIPPED_MODEL.resolve() in shipped
