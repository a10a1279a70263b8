"""Request counts and latencies by endpoint and status, exported by Ray beside Serve's own
Prometheus metrics (as `ray_chromaref_requests_total` and `ray_chromaref_request_latency_ms`)."""

from __future__ import annotations

LATENCY_BOUNDARIES_MS = [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000]


class RequestMetrics:
    def __init__(self) -> None:
        from ray.serve.metrics import Counter, Histogram

        self.requests = Counter(
            "chromaref_requests",
            description="HTTP requests answered by the chromaref API, by endpoint and status.",
            tag_keys=("endpoint", "status"),
        )
        self.latency = Histogram(
            "chromaref_request_latency_ms",
            description="Time to answer a chromaref API request, by endpoint (ms).",
            boundaries=LATENCY_BOUNDARIES_MS,
            tag_keys=("endpoint",),
        )

    def record(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.inc(tags={"endpoint": endpoint, "status": str(status)})
        self.latency.observe(seconds * 1000.0, tags={"endpoint": endpoint})
