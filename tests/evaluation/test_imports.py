"""Importing the evaluation loads no FAISS: only an index that `chromaref eval` opens does."""

from __future__ import annotations

import subprocess
import sys

import pytest

_CHECK = """
import sys
import chromaref.evaluation.plots, chromaref.evaluation.report, chromaref.evaluation.run
print(sorted(m for m in ("faiss", "chromaref.retrieval.index") if m in sys.modules))
"""


@pytest.mark.slow
def test_importing_the_evaluation_does_not_import_faiss():
    done = subprocess.run(
        [sys.executable, "-c", _CHECK], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.split("\n")[-2] == "[]"
