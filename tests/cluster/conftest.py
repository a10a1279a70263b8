"""The module-wide cluster of tests/cluster (see ray_start_cluster.py)."""

from __future__ import annotations

import pytest
from ray_start_cluster import CliCluster


@pytest.fixture(scope="module")
def cli_cluster():
    """One 2-node `ray start` cluster (1 CPU each) for the module; stopped (by pid) at its
    end."""
    cluster = CliCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
