"""What a serving deployment is told: limits, scaling, batching and the model, in one model.

The same keys are `chromaref serve --config FILE` and the `args:` of the application in a Ray
Serve config file (`serve deploy configs/serve.yaml`), so both routes build the same app.
Validated before anything starts: a bad key or value is a one-line error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chromaref.platform.config import MatchingConfig, PipelineConfig
from chromaref.platform.images import DEFAULT_MAX_PIXELS
from chromaref.platform.settings import read_yaml, resolve_settings

API_KEY_ENV = "CHROMAREF_API_KEY"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Scaling(_Strict):
    """Replicas, backpressure and resources of one deployment (Ray Serve's own keys)."""

    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(1, ge=1)
    target_ongoing_requests: float = Field(1.0, gt=0, description="per replica, for autoscaling")
    upscale_delay_s: float = Field(5.0, ge=0)
    downscale_delay_s: float = Field(60.0, ge=0)
    max_ongoing_requests: int = Field(
        1, ge=1, description="requests one replica runs at once (a Colorizer: one per core)"
    )
    max_queued_requests: int = Field(
        32, ge=-1, description="waiting beyond this answers 503 (-1: unbounded)"
    )
    num_cpus: float = Field(1.0, ge=0, description="CPUs per replica; also its torch threads")
    num_gpus: float | Literal["auto"] = Field(
        "auto", description="GPUs per replica; auto: 1 when the cluster has a GPU"
    )

    @model_validator(mode="after")
    def _replicas_ordered(self) -> Scaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} > max_replicas {self.max_replicas}")
        return self

    def torch_threads(self) -> int:
        return max(1, int(self.num_cpus))


class Batching(_Strict):
    """`@serve.batch` on the Colorizer: targets arriving together share one backbone pass."""

    enabled: bool = False
    max_batch_size: int = Field(4, ge=1)
    wait_timeout_s: float = Field(0.01, ge=0)


class Limits(_Strict):
    """What one request may ask for; beyond each, a JSON error and nothing kept."""

    max_upload_bytes: int = Field(32 << 20, ge=1024, description="whole request body (413)")
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, description="per decoded image (413)")
    max_references: int = Field(4, ge=1, description="uploaded or chosen references")
    max_top: int = Field(8, ge=1, description="retrieved references per request")
    request_timeout_s: float = Field(120.0, gt=0, description="then 504")


class ServeConfig(_Strict):
    """Everything the application needs; defaults serve the bundled index, offline."""

    index: str | None = Field(None, description="index folder; None: the bundled photos")
    trust_index: bool = False

    @field_validator("index")
    @classmethod
    def _absolute_index(cls, index: str | None) -> str | None:
        """A local folder made absolute where the settings are read: replicas on a cluster
        run in other folders (URIs are left as they are)."""
        if index is None or "://" in index:
            return index
        return str(Path(index).expanduser().resolve())

    method: str = Field(
        PipelineConfig().colorizer, description="colorizer (`chromaref colorize --method`)"
    )
    model: str | None = Field(None, description="with method trained: a colornet file")
    working_size: int = Field(MatchingConfig().working_size, ge=32, le=4096)
    thumbnail_size: int = Field(160, ge=16, le=1024, description="long side of thumbnails")
    limits: Limits = Limits()
    batching: Batching = Batching()
    colorizer: Scaling = Scaling()
    retriever: Scaling = Scaling(num_cpus=0.5, num_gpus=0, max_ongoing_requests=8)
    ingress: Scaling = Scaling(
        num_cpus=0, num_gpus=0, max_ongoing_requests=64, max_queued_requests=-1
    )
    cors_origins: list[str] = Field(default_factory=list, description="CORS off when empty")
    api_key_env: str = Field(
        API_KEY_ENV, description="environment variable holding the API key (unset: no key)"
    )


def load_serve_config(path: Path | None, overrides: dict[str, Any] | None = None) -> ServeConfig:
    """Defaults <- a YAML file <- dotted overrides (`colorizer.max_replicas=2`).

    The file may hold the settings themselves, or be a Ray Serve config file (like
    configs/serve.yaml), whose first application's `args` are the settings.

    Raises:
        ConfigError: the file cannot be read, or one line naming every bad key or value.
    """
    base = read_yaml(path) if path is not None else {}
    if "applications" in base:
        applications = base["applications"] or [{}]
        base = applications[0].get("args") or {}
    return resolve_settings(ServeConfig, base, overrides, source=str(path or "settings"))
