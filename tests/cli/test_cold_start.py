"""What a `chromaref` process pays once: one backbone load for `colorize --auto`, even when it
first builds the default index; OpenMP threads that sleep rather than spin while waiting."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from PIL import Image
from typer.testing import CliRunner

from chromaref.cli.main import app
from chromaref.platform.assets import photo
from chromaref.platform.models import backbone_loads

runner = CliRunner()


@pytest.mark.slow
def test_first_auto_run_loads_the_backbone_once(tmp_path, monkeypatch):
    monkeypatch.setenv("CHROMAREF_CACHE", str(tmp_path / "cache"))  # builds the default index
    target = tmp_path / "old.png"
    Image.open(photo("chelsea").path).convert("L").resize((160, 120)).save(target)
    before = backbone_loads()
    args = ["colorize", str(target), "--auto", "--top", "1", "--out", str(tmp_path / "out"), "-q"]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert list((tmp_path / "cache" / "indexes").iterdir())  # it did build the index
    assert backbone_loads() == before + 1


def _wait_policy_seen_by_the_cli(env: dict[str, str]) -> str:
    """OMP_WAIT_POLICY after importing the CLI, and whether torch (whose OpenMP runtime reads
    it once, at load) was imported before the CLI could set it."""
    code = (
        "import os, sys, chromaref.cli.main; "
        "print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_the_cli_makes_openmp_threads_wait_passively_unless_told_otherwise():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _wait_policy_seen_by_the_cli(env) == "PASSIVE False"
    assert _wait_policy_seen_by_the_cli({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE False"
