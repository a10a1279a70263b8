"""Running the application until told to stop: what `chromaref serve` does.

On a private local Ray (the default) everything it started stops with it; on a cluster
(`--address`) it removes only its own application and leaves Serve and the cluster running.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from chromaref.platform.errors import ConfigError, first_line
from chromaref.serving.config import ServeConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


def check_port_free(endpoint: Endpoint) -> None:
    """Fail in a second, with a clear line, where Serve's proxy would fail to bind later."""
    family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((endpoint.host, endpoint.port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {endpoint.host}:{endpoint.port} ({exc.strerror or exc}); "
                "pick another --port or stop what uses it"
            ) from None


def preflight(config: ServeConfig) -> int:
    """Open the index (building the bundled one on first use) and load the model here, so a
    wrong path is one line before any replica starts. Returns the index's reference count."""
    from chromaref.platform import colorizers
    from chromaref.platform.config import PipelineConfig, TrainedConfig
    from chromaref.retrieval.default import open_index

    index = open_index(config.index, trust=config.trust_index)
    index.check_references()
    pipeline_config = PipelineConfig(
        colorizer=config.method, trained=TrainedConfig(model=config.model)
    )
    colorizers.get_colorizer(config.method, config=pipeline_config)
    return len(index)


def serve_until_stopped(
    config: ServeConfig,
    endpoint: Endpoint,
    *,
    address: str | None = None,
    metrics_port: int | None = None,
    verbose: bool = False,
    on_ready: Callable[[str, int | None], None] = lambda url, _metrics: print(url),
    stop: threading.Event | None = None,
) -> None:
    """Start the app, call `on_ready(url, metrics_port)`, and serve until SIGINT/SIGTERM
    (or `stop`). `metrics_port` is where this node's Prometheus metrics are, when known.

    Raises:
        ConfigError: the port is taken, Ray cannot start or join, or the app fails to start.
    """
    import ray
    from ray import serve

    from chromaref.retrieval.runtime import ensure_ray
    from chromaref.serving.app import APP_NAME, build

    private = not (address or _ray_address_from_env())
    if private:
        check_port_free(endpoint)
    ensure_ray(address, log_to_driver=verbose, metrics_port=metrics_port)
    if not verbose:  # Serve's own start-up lines; its request log stays in Ray's log files
        logging.getLogger("ray.serve").setLevel(logging.WARNING)
    stop = stop or threading.Event()
    previous, deployed = {}, False
    if threading.current_thread() is threading.main_thread():  # signals reach only it
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in _STOP_SIGNALS}
    try:
        serve.start(http_options={"host": endpoint.host, "port": endpoint.port})
        _check_serve_listens_at(endpoint)
        deployed = True  # from here on the app is ours to remove
        try:
            serve.run(build(config), name=APP_NAME, route_prefix="/")
        except Exception as exc:  # a replica failed to start: Ray reports it many ways
            raise ConfigError(f"the application did not start: {first_line(exc)}") from None
        on_ready(endpoint.url, _metrics_port())
        while not stop.wait(0.5):
            pass
        logger.warning("stopping")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if private:
            serve.shutdown()
            ray.shutdown()
        elif deployed and ray.is_initialized():
            serve.delete(APP_NAME)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _check_serve_listens_at(endpoint: Endpoint) -> None:
    """A cluster has one Serve HTTP address, set by whoever started Serve there first;
    `serve.start` only warns that another one is ignored. Refuse rather than announce a URL
    that nothing listens on."""
    from ray.serve.context import _get_global_client

    http = _get_global_client().http_config
    if http.port != endpoint.port:
        raise ConfigError(
            f"Serve already runs on this cluster and listens on port {http.port} (one HTTP "
            f"port per cluster); use --port {http.port}"
        )


def _ray_address_from_env() -> str | None:
    import os

    return os.environ.get("RAY_ADDRESS") or None


def _metrics_port() -> int | None:
    """This node's Prometheus export port (Serve's metrics and ours)."""
    import ray

    here = ray.get_runtime_context().get_node_id()
    ports = [n.get("MetricsExportPort") for n in ray.nodes() if n.get("NodeID") == here]
    return int(ports[0]) if ports and ports[0] else None
