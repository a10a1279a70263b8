"""Connecting to Ray: a private local instance by default, a cluster only when asked for.

    ensure_ray()                          # private local instance (even if `ray start` runs)
    ensure_ray("auto")                    # the cluster `ray start` runs on this machine
    ensure_ray("10.0.0.5:6379")           # or "ray://head:10001", or RAY_ADDRESS=...

Without an address, plain `ray.init()` joins whatever cluster Ray recorded in
`/tmp/ray/ray_current_cluster`; when that cluster died without `ray stop`, it retries for
ever, and a live one refuses `num_cpus`. So no address means `ray.init(address="local")`, and
a given (or recorded, for "auto") address is first checked with a short TCP connect: a dead
one is a one-line error within seconds, not a hang.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from urllib.parse import urlsplit

from chromaref.platform.errors import ConfigError

logger = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 3.0
FIXES = (
    "start that cluster, pass a reachable --address (or RAY_ADDRESS), unset RAY_ADDRESS and "
    "leave out --address for a private local Ray, use --local to run without Ray, or run "
    "`ray stop` to clear a local cluster that died"
)


def ensure_ray(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    log_to_driver: bool = True,
    metrics_port: int | None = None,
) -> None:
    """Start (or join) Ray once per process.

    Args:
        address: a cluster to join ("host:port", "ray://host:port", or "auto" for the one
            `ray start` runs here); default `$RAY_ADDRESS`, else "local": a private instance
            (dashboard off, token auth off), whatever cluster runs on this machine.
        num_cpus: CPUs of a private instance; a joined cluster keeps its own resources.
        log_to_driver: print the workers' output here (a server keeps it in Ray's log files).
        metrics_port: where a private instance exports Prometheus metrics (default: any free
            port; a joined cluster keeps its own).

    Raises:
        ConfigError: the cluster does not answer, or Ray refuses to join it.
    """
    import ray

    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS") or "local"
        if address == "local":
            _start_private(num_cpus, log_to_driver=log_to_driver, metrics_port=metrics_port)
        else:
            _join(address, num_cpus, log_to_driver=log_to_driver)
    quiet_ray_data()


def _recorded_address() -> str | None:
    """The cluster that `ray start` last recorded on this machine (Ray's own lookup)."""
    from ray._common.utils import get_ray_address_file

    path = get_ray_address_file(None)
    try:
        with open(path) as f:
            return f.read().strip() or None
    except OSError:
        return None


def _endpoint(address: str) -> tuple[str, int]:
    """host and port of "host:port", "[v6]:port" or "ray://host:port"."""
    parts = urlsplit(address if "://" in address else f"//{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ConfigError(
            f"Ray address {address!r} is not host:port, ray://host:port, auto or local"
        )
    return parts.hostname, port


def _probe(address: str, label: str) -> None:
    """Fail within seconds when nothing listens at the address (Ray itself would retry)."""
    host, port = _endpoint(address)
    start = time.monotonic()
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"the Ray cluster at {label} does not answer ({host}:{port}: {reason} after "
            f"{time.monotonic() - start:.1f} s); {FIXES}"
        ) from None


def _start_private(num_cpus: int | None, *, log_to_driver: bool, metrics_port: int | None) -> None:
    import ray

    recorded = _recorded_address()
    if recorded:
        logger.warning(  # printed: the user may have expected this cluster to be used
            "a local Ray cluster is recorded at %s; not joining it, starting a private "
            "instance (pass --address auto to use that cluster)",
            recorded,
        )
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # private to this process
    ray.init(
        address="local",
        num_cpus=num_cpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=log_to_driver,
        _metrics_export_port=metrics_port,
    )
    logger.info("started a private local Ray instance (%s CPUs)", num_cpus or "all")


def _join(address: str, num_cpus: int | None, *, log_to_driver: bool) -> None:
    import ray

    target, label = address, address
    if address == "auto":
        target = _recorded_address()
        label = f"{target} (auto: the cluster `ray start` recorded on this machine)"
        if target is None:
            raise ConfigError(
                "Ray address auto: no local Ray cluster is running (none recorded by "
                "`ray start`); start one with `ray start --head`, or leave out --address "
                "and RAY_ADDRESS for a private local Ray"
            )
    _probe(target, label)
    if num_cpus is not None:
        logger.info("joining a cluster: its own resources apply, not num_cpus=%d", num_cpus)
    try:
        ray.init(address=target, logging_level=logging.WARNING, log_to_driver=log_to_driver)
    except Exception as exc:  # Ray raises many kinds here (RaySystemError, gRPC, ...)
        reason = " ".join(str(exc).split())[:300]
        message = f"could not join the Ray cluster at {target}: {reason}; {FIXES}"
        raise ConfigError(message) from None
    logger.warning("joined the Ray cluster at %s", target)  # printed: where the work runs


def quiet_ray_data() -> None:
    """Ray Data's own progress bars and logs would drown the CLI's progress bar."""
    import ray.data

    logging.getLogger("ray.data").setLevel(logging.ERROR)
    ray.data.DataContext.get_current().enable_progress_bars = False


def descriptor_pool_size() -> tuple[int, float, float]:
    """(actors, cpus per actor, gpus per actor), sized from the cluster's resources.

    With GPUs: one actor per GPU, and decoding runs as separate CPU tasks. Without: Ray Data
    fuses decoding into the actors (same resources), so one single-threaded actor per CPU
    uses every core without a separate read stage to starve (the corpus listing is already
    in memory).
    """
    import ray

    resources = ray.cluster_resources()
    cpus, gpus = resources.get("CPU", 1.0), resources.get("GPU", 0.0)
    if gpus >= 1:
        return int(gpus), 1.0, 1.0
    return max(1, int(cpus)), 1.0, 0.0
