"""Every command infra/ runs exists with the options it passes, and every install line is the
README's: the installed `chromaref` and `ray` CLIs answer `--help` for them."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HELP_ENV = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}


def _help(argv: list[str]) -> str:
    """`argv --help` through the installed console script; it must exit 0."""
    exe = shutil.which(argv[0])
    assert exe, f"{argv[0]} is not installed"
    done = subprocess.run(
        [exe, *argv[1:], "--help"], capture_output=True, text=True, env=HELP_ENV, timeout=120
    )
    assert done.returncode == 0, f"{' '.join(argv)} --help: {done.stderr[-2000:]}"
    return done.stdout


def _command_and_options(argv: list[str]) -> tuple[list[str], list[str]]:
    """(`chromaref index build`, its --options) from a whole command line."""
    rest = _args_after(argv)
    options = [a.split("=", 1)[0] for a in rest if a.startswith("--")]
    return argv[: len(argv) - len(rest)], options


def _assert_cli_accepts(argv: list[str]) -> None:
    command, options = _command_and_options(argv)
    text = _help(command)
    for option in options:
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), (
            f"{' '.join(command)} has no {option}"
        )


def _entrypoints(by_kind) -> list[list[str]]:
    return [shlex.split(job["spec"]["entrypoint"]) for job in by_kind["RayJob"]]


def test_rayjob_entrypoints_are_chromaref_commands_with_object_store_io(by_kind):
    commands = {tuple(argv[:3]) for argv in _entrypoints(by_kind)}
    assert commands == {("chromaref", "index", "build"), ("chromaref", "train", "--config")}
    for argv in _entrypoints(by_kind):
        values = [a.split("=", 1)[1] if re.match(r"\w+=", a) else a for a in argv]
        uris = [v for v in values if "://" in v]
        assert uris and all(u.startswith("s3://") for u in uris), argv


@pytest.mark.slow
def test_every_rayjob_entrypoint_and_the_image_cmd_run_with_help(by_kind, dockerfile):
    import json

    cmd = json.loads(dockerfile.all("CMD")[-1])
    for argv in [*_entrypoints(by_kind), cmd]:
        _assert_cli_accepts(argv)


def test_train_entrypoint_resolves_to_a_valid_config_inside_the_image(by_kind, dockerfile):
    """Its --config is a path in the image (WORKDIR = this checkout) and its settings validate."""
    from chromaref.platform.settings import parse_assignment, read_yaml
    from chromaref.training.config import resolve_config

    [argv] = [a for a in _entrypoints(by_kind) if a[1] == "train"]
    workdir = dockerfile.all("WORKDIR")[-1]
    config = argv[argv.index("--config") + 1]
    assert config.startswith(workdir + "/")
    local = REPO / config.removeprefix(workdir + "/")
    assert local.is_file(), f"{config} is not in the image: {local} does not exist"
    overrides = dict(parse_assignment(argv[i + 1]) for i, a in enumerate(argv) if a == "--set")
    options = {"--corpus": "corpus", "--index": "index", "--storage": "storage", "--out": "out"}
    overrides.update(
        {key: argv[argv.index(flag) + 1] for flag, key in options.items() if flag in argv}
    )
    resolved = resolve_config(read_yaml(local), overrides)
    assert resolved.storage.startswith("s3://") and resolved.out.startswith("s3://")


def _ray_start_lines(launcher) -> list[str]:
    lines = launcher["head_start_ray_commands"] + launcher["worker_start_ray_commands"]
    return [step for line in lines for step in line.split("&&") if "ray start" in step]


@pytest.mark.slow
def test_launcher_ray_start_options_exist(launcher):
    text = _help(["ray", "start"])
    for line in _ray_start_lines(launcher):
        argv = shlex.split(line.strip())
        _, options = argv[:2], [a.split("=", 1)[0] for a in argv[2:] if a.startswith("--")]
        assert options
        for option in options:
            assert option in text, f"ray start has no {option}"


def test_dockerfile_installs_with_the_readme_line(dockerfile, readme_install, shell_steps):
    readme = (REPO / "README.md").read_text()
    assert "use `gpu` instead" in readme  # the README's own rule for CUDA machines
    [run] = [r for r in dockerfile.all("RUN") if "pip install" in r]
    for variant in ("cpu", "gpu"):
        ours = shell_steps(run.replace("${VARIANT}", variant))
        expected = [s.replace(".[cpu]", f".[{variant}]") for s in readme_install]
        assert ours == expected


def _install_line(commands: list[str], shell_steps) -> list[str]:
    [line] = [c for c in commands if "pip install -e" in c]
    found = shell_steps(line)
    assert found[0] == "cd ~/chromaref", found  # where file_mounts puts this checkout
    return found[1:]


def test_launcher_installs_with_the_readme_line(launcher, readme_install, shell_steps):
    assert launcher["file_mounts"] == {"~/chromaref": "."}
    head = _install_line(launcher["head_setup_commands"], shell_steps)
    assert head == readme_install
    for name, node in launcher["available_node_types"].items():
        if name == launcher["head_node_type"]:
            continue
        variant = "gpu" if node["resources"].get("GPU", 0) else "cpu"
        found = _install_line(node["worker_setup_commands"], shell_steps)
        assert found == [s.replace(".[cpu]", f".[{variant}]") for s in readme_install], name


def test_launcher_starts_ray_from_the_installed_venv(launcher):
    for line in launcher["head_start_ray_commands"] + launcher["worker_start_ray_commands"]:
        assert line.startswith(". ~/chromaref/.venv/bin/activate && "), line


def _received(argv: list[str]) -> list[str]:
    """What the CLI's command function would receive for `argv`, parsed and converted by the
    real click command (nothing runs), flattened to strings."""
    import typer

    from chromaref.cli.main import app

    command = typer.main.get_command(app)
    for word in argv[1:]:
        if not isinstance(command, typer.core.TyperGroup) or word not in command.commands:
            break
        command = command.commands[word]
    ctx = command.make_context(command.name, _args_after(argv))
    values = []
    for value in ctx.params.values():
        values += [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
    return values


def _args_after(argv: list[str]) -> list[str]:
    words = 3 if argv[:2] == ["chromaref", "index"] else 2
    return argv[words:]


def _uri_cases() -> list:
    docs = [
        yaml.safe_load(p.read_text()) for p in sorted((REPO / "infra/kuberay").glob("rayjob-*"))
    ]
    return [
        pytest.param(shlex.split(doc["spec"]["entrypoint"]), id=doc["metadata"]["name"])
        for doc in docs
    ]


@pytest.mark.parametrize("argv", _uri_cases())
def test_object_store_uris_reach_the_command_unchanged(argv):
    received = _received(argv)
    for word in argv:
        uri = word.split("=", 1)[1] if re.match(r"\w+=", word) else word
        if "://" in uri:
            assert any(uri in value for value in received), f"{uri} arrives as {received}"
