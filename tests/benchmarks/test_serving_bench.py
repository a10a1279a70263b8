"""The serving benchmark runs end to end (`--quick`: a real Ray Serve app on 127.0.0.1), and
the page's serving section is built from what it wrote. Timings are not asserted here."""

from __future__ import annotations

import json
import os

import pytest
from test_suite_smoke import _run

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def test_serving_benchmark_quick(tmp_path):
    _run("serving", "--quick", out=tmp_path)
    results = json.loads((tmp_path / "results" / "serving.json").read_text())
    assert results["command"] == "python -m benchmarks.serving --quick"
    assert "commit" in results["machine"] and len(results["loadavg"]["end"]) == 3
    configs = {(r["replicas"], r["batching"]) for r in results["load"]}
    assert configs == {(1, False), (1, True), (2, False), (2, True)}
    assert all(r["throughput_rps"] > 0 and r["cores"]["Colorizer"] > 0 for r in results["load"])
    overhead = results["overhead"]
    assert overhead["http_ms"] > 0 and overhead["in_process_ms"] > 0
    scaling = results["autoscaling"]
    assert scaling["upscale_decided_s"] is not None  # a second replica was asked for
    assert {s["in_flight"] for s in scaling["samples"]} >= {0, 4}
    _run("report", out=tmp_path)
    page = (tmp_path / "benchmarks.md").read_text()
    assert "## Serving: Ray Serve over HTTP (CPU)\n" in page
    assert f"{results['load'][0]['throughput_rps']:.2f}" in page
    assert (tmp_path / "images" / "serving_autoscaling.png").is_file()


def test_a_replica_running_a_request_keeps_its_role():
    """Ray retitles a replica's process while it runs a method; its CPU is still its own."""
    from benchmarks.serving import APP_NAME, _role

    parents = {101: os.getpid(), 102: 101, 103: 1}
    replica = f"ray::ServeReplica:{APP_NAME}:Colorizer"
    assert _role(102, replica, parents) == "Colorizer"
    assert _role(102, f"{replica}.handle_request_with_rejection", parents) == "Colorizer"
    assert _role(101, "ray::ProxyActor", parents) == "proxy"
    assert _role(103, replica, parents) is None  # another user's Ray
