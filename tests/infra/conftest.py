"""The deployment configs under infra/, read once: KubeRay manifests, the cluster-launcher YAML,
the Dockerfile, and what they must agree with (the README's install line, the pinned Ray)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
KUBERAY = INFRA / "kuberay"
LAUNCHER = INFRA / "cluster-launcher" / "aws.yaml"
DOCKERFILE = INFRA / "docker" / "Dockerfile"


@dataclass(frozen=True)
class Dockerfile:
    """Instructions (continuation lines joined) and the default of every ARG."""

    instructions: list[tuple[str, str]]
    args: dict[str, str]

    def all(self, keyword: str) -> list[str]:
        return [rest for word, rest in self.instructions if word == keyword]


def parse_dockerfile(text: str) -> Dockerfile:
    joined = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    args = {}
    for word, rest in instructions:
        if word == "ARG" and "=" in rest:
            name, value = rest.split("=", 1)
            args[name] = value
    return Dockerfile(instructions, args)


def steps(command: str) -> list[str]:
    """A shell line's `&&`-separated steps, whitespace-normalised."""
    return [" ".join(part.split()) for part in command.split("&&")]


@pytest.fixture(scope="module")
def manifests() -> dict[str, list[dict]]:
    """Every KubeRay manifest by file name, as its YAML documents."""
    found = {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        for path in sorted(KUBERAY.glob("*.yaml"))
    }
    assert found, f"no manifests in {KUBERAY}"
    return found


@pytest.fixture(scope="module")
def by_kind(manifests) -> dict[str, list[dict]]:
    kinds: dict[str, list[dict]] = {}
    for docs in manifests.values():
        for doc in docs:
            kinds.setdefault(doc["kind"], []).append(doc)
    return kinds


@pytest.fixture(scope="module")
def launcher() -> dict:
    return yaml.safe_load(LAUNCHER.read_text())


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def readme_install() -> list[str]:
    """The README's Quick-start install line as steps, without the demo that follows it."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README's Quick start has no ```bash block"
    found = steps(block.group(1).strip())
    install = [s for s in found if not s.startswith("chromaref ")]
    assert any(s.startswith("pip install -e") for s in install), found
    return install


@pytest.fixture(scope="module")
def shell_steps():
    """`steps`, for tests (test folders are not packages, so they cannot import it)."""
    return steps
