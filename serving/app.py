"""The HTTP application: a FastAPI ingress composing `Retriever` and `Colorizer`.

    serve.run(build({}))                          # the bundled index, defaults
    serve deploy configs/serve.yaml               # the same app from a Serve config file

    POST /v1/colorize     image, [reference...], [reference_id...], top, format -> results
    POST /v1/references   image, top -> ranked references with thumbnails
    GET  /healthz  /readyz  /  /docs

Errors are `{"error": ...}` with the status the issue of the request deserves: 400 not an
image, 413 too large, 422 gray or unusable reference, 503 overloaded, 504 too slow.
"""

from __future__ import annotations

import asyncio
import base64
import time
from importlib import resources
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.formparsers import MultiPartParser

from chromaref.platform.errors import (
    ChromarefError,
    IndexFileError,
    IndexMismatchError,
    UnusableReferenceError,
)
from chromaref.serving.config import Scaling, ServeConfig
from chromaref.serving.deployments import ColorizeJob, Colorizer, ReferenceImage, Retriever
from chromaref.serving.http import (
    ApiError,
    ApiKey,
    BodyLimit,
    client_label,
    decode_upload,
    error_response,
    install_error_handlers,
    route_path,
)
from chromaref.serving.metrics import RequestMetrics

FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg"}
READY_TIMEOUT_S = 5.0
ENDPOINTS = frozenset({"/v1/colorize", "/v1/references", "/healthz", "/readyz", "/"})
APP_NAME = "chromaref"


def _page() -> str:
    return resources.files("chromaref.serving.web").joinpath("index.html").read_text()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _replica_failure(exc: BaseException) -> ApiError | None:
    """Serve's overload and replica-death errors as 503s a client can retry."""
    from ray.exceptions import ActorUnavailableError, RayActorError
    from ray.serve.exceptions import BackPressureError

    retry = {"retry-after": "1"}
    if isinstance(exc, BackPressureError):
        return ApiError(503, "the server is at capacity; retry shortly", retry)
    if isinstance(exc, (RayActorError, ActorUnavailableError)):  # a replica died or restarts
        return ApiError(503, "a worker restarted while handling this request; retry", retry)
    return None


def _as_api_error(exc: BaseException) -> ApiError | None:
    """A deployment's exception as the client's error (None: a server bug, left as 500)."""
    if isinstance(exc, ApiError):
        return exc
    if (failure := _replica_failure(exc)) is not None:
        return failure
    if isinstance(exc, UnusableReferenceError):
        return ApiError(422, _message(exc))
    if isinstance(exc, (IndexFileError, IndexMismatchError)):
        return ApiError(500, f"the reference index cannot be used: {_message(exc)}")
    if isinstance(exc, ChromarefError):
        return ApiError(400, _message(exc))
    return None


def _unwrap(result: Any) -> Any:
    """A deployment's answer, raising the client's error it returned instead of raising."""
    if isinstance(result, ChromarefError):
        raise result
    return result


def _message(exc: BaseException) -> str:
    """The original error's message (Ray's remote errors carry a traceback before it)."""
    cause = getattr(exc, "cause", None)
    return str(cause if isinstance(cause, ChromarefError) else exc).strip().splitlines()[-1]


@serve.deployment(name="Gateway")
@serve.ingress()
class Gateway:
    """The ingress: validates and decodes uploads, asks the Retriever for references and the
    Colorizer for results, and answers JSON."""

    def __init__(
        self, retriever: DeploymentHandle, colorizer: DeploymentHandle, config: dict
    ) -> None:
        self.retriever, self.colorizer = retriever, colorizer
        self.config = ServeConfig.model_validate(config)
        self.metrics = RequestMetrics()

    def __serve_build_asgi_app__(self) -> FastAPI:
        return make_api(self)

    async def ready(self) -> dict[str, Any]:
        references, _ = await asyncio.gather(
            self.retriever.ready.remote(), self.colorizer.ready.remote()
        )
        return {"status": "ready", "references": references}

    async def references(self, data: bytes, name: str, top: int) -> dict[str, Any]:
        self._check_top(top)
        target = await self._decode((data, name))
        found = await self.retriever.suggest.remote(target, top)
        for item in found:
            item["thumbnail"] = _b64(item["thumbnail"])
        return {"references": found}

    async def colorize(
        self,
        image: tuple[bytes, str],
        uploads: list[tuple[bytes, str]],
        reference_ids: list[str],
        top: int,
        fmt: str,
    ) -> dict[str, Any]:
        limits, seconds = self.config.limits, {}
        if fmt.lower() not in FORMATS:
            raise ApiError(400, f"format must be png or jpeg, not {fmt!r}")
        if len(uploads) + len(reference_ids) > limits.max_references:
            raise ApiError(413, f"at most {limits.max_references} references per request")
        self._check_top(top)
        start = time.perf_counter()
        target = await self._decode(image)
        references = [
            ReferenceImage(f"upload-{i}", upload[1], await self._decode(upload))
            for i, upload in enumerate(uploads, start=1)
        ]
        seconds["decode"] = time.perf_counter() - start
        start = time.perf_counter()
        if reference_ids:
            references += _unwrap(await self.retriever.lookup.remote(reference_ids))
        if not references:
            references = await self.retriever.search.remote(target, top)
            if not references:
                raise ApiError(422, f"no usable reference among the index's top {top}")
        seconds["retrieve"] = time.perf_counter() - start
        start = time.perf_counter()
        results = _unwrap(
            await self.colorizer.colorize.remote(
                ColorizeJob(target, references, FORMATS[fmt.lower()])
            )
        )
        seconds["colorize"] = time.perf_counter() - start
        return {
            "results": [
                {
                    "image": _b64(result.data),
                    "format": result.format,
                    "width": int(target.shape[1]),
                    "height": int(target.shape[0]),
                    "reference": {
                        "id": result.reference.id,
                        "name": result.reference.name,
                        "label": result.reference.label,
                        "score": result.reference.score,
                    },
                }
                for result in results
            ],
            "seconds": seconds,
        }

    async def _decode(self, upload: tuple[bytes, str]):
        """An upload decoded off the event loop (see `decode_upload`)."""
        return await asyncio.to_thread(decode_upload, *upload, self.config.limits.max_pixels)

    def _check_top(self, top: int) -> None:
        if not 1 <= top <= self.config.limits.max_top:
            raise ApiError(400, f"top must be between 1 and {self.config.limits.max_top}")


def make_api(gateway: Gateway) -> FastAPI:
    """The FastAPI app of one Gateway replica (built at replica start, from its config)."""
    config = gateway.config
    # Uploads stay in memory (the body limit bounds them) instead of spilling to temp files.
    MultiPartParser.spool_max_size = config.limits.max_upload_bytes
    api = FastAPI(
        title="chromaref",
        summary="Exemplar-based colorization with automatic reference retrieval.",
        version="1",
    )
    install_error_handlers(api)

    api.add_middleware(ApiKey, variable=config.api_key_env)
    api.add_middleware(BodyLimit, limit=config.limits.max_upload_bytes)

    @api.middleware("http")  # outside the key and size checks: their refusals count too
    async def measure(request: Request, call_next):
        start = time.perf_counter()
        try:
            async with asyncio.timeout(config.limits.request_timeout_s):
                response = await call_next(request)
        except TimeoutError:
            limit = config.limits.request_timeout_s
            response = error_response(504, f"the request took longer than {limit:g} s")
        path = route_path(request.scope)
        gateway.metrics.record(
            path if path in ENDPOINTS else "other",
            response.status_code,
            time.perf_counter() - start,
        )
        return response

    if config.cors_origins:
        api.add_middleware(
            CORSMiddleware,
            allow_origins=config.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )

    async def answer(work):
        try:
            return await work
        except Exception as exc:
            error = _as_api_error(exc)
            if error is None:
                raise
            raise error from None

    @api.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up (it may still be loading models)."""
        return {"status": "ok"}

    @api.get("/readyz")
    async def readyz() -> dict[str, Any]:
        """Models and index are loaded (503 until then)."""
        try:
            return await asyncio.wait_for(gateway.ready(), READY_TIMEOUT_S)
        except Exception as exc:  # a timeout, or a deployment not (yet) reachable
            raise ApiError(503, f"not ready: {type(exc).__name__}") from None

    @api.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return _page()

    @api.post("/v1/references")
    async def references(
        image: Annotated[UploadFile, File(description="the (gray) photo to colorize")],
        top: Annotated[int, Form(description="how many references")] = 4,
    ) -> dict[str, Any]:
        """Ranked references for a photo, each with a small JPEG thumbnail (base64)."""
        data = await image.read()
        return await answer(gateway.references(data, client_label(image.filename, "image"), top))

    @api.post("/v1/colorize")
    async def colorize(
        image: Annotated[UploadFile, File(description="the (gray) photo to colorize")],
        reference: Annotated[
            list[UploadFile], File(description="color references; one result each")
        ] = [],  # noqa: B006 - FastAPI form defaults are copied per request
        reference_id: Annotated[
            list[str], Form(description="ids from /v1/references; one result each")
        ] = [],  # noqa: B006
        top: Annotated[int, Form(description="retrieved references when none given")] = 1,
        format: Annotated[str, Form(description="png (default, exact luminance) or jpeg")] = "png",
    ) -> dict[str, Any]:
        """One colorization per reference (given, chosen by id, or retrieved), best first."""
        target = (await image.read(), client_label(image.filename, "image"))
        uploads = [
            (await ref.read(), client_label(ref.filename, f"reference-{i}"))
            for i, ref in enumerate(reference, start=1)
        ]
        return await answer(gateway.colorize(target, uploads, reference_id, top, format))

    return api


def _options(scaling: Scaling, *, gpus: float, log_level: str = "INFO") -> dict[str, Any]:
    """Ray Serve deployment options from a `Scaling` section."""
    options: dict[str, Any] = {
        "max_ongoing_requests": scaling.max_ongoing_requests,
        "max_queued_requests": scaling.max_queued_requests,
        "ray_actor_options": {"num_cpus": scaling.num_cpus, "num_gpus": gpus},
        "health_check_period_s": 10.0,
        "health_check_timeout_s": 60.0,
        "graceful_shutdown_timeout_s": 5.0,
    }
    if scaling.min_replicas == scaling.max_replicas:
        options["num_replicas"] = scaling.max_replicas
    else:
        options["autoscaling_config"] = {
            "min_replicas": scaling.min_replicas,
            "initial_replicas": max(1, scaling.min_replicas),
            "max_replicas": scaling.max_replicas,
            "target_ongoing_requests": scaling.target_ongoing_requests,
            "upscale_delay_s": scaling.upscale_delay_s,
            "downscale_delay_s": scaling.downscale_delay_s,
            "metrics_interval_s": 1.0,
            "look_back_period_s": 5.0,
        }
    return options


def _gpus(scaling: Scaling) -> float:
    """A replica's GPUs: as configured, or with "auto" 1 when the cluster has any."""
    if scaling.num_gpus != "auto":
        return float(scaling.num_gpus)
    import ray

    has_gpu = ray.is_initialized() and ray.cluster_resources().get("GPU", 0) >= 1
    return 1.0 if has_gpu else 0.0


def deployment_options(config: ServeConfig) -> dict[str, dict[str, Any]]:
    """Ray Serve options of each deployment, by name, from the settings."""
    options = {
        "Retriever": _options(config.retriever, gpus=_gpus(config.retriever)),
        "Colorizer": _options(config.colorizer, gpus=_gpus(config.colorizer)),
        "Gateway": _options(config.ingress, gpus=0.0),
    }
    if config.batching.enabled:  # a batch forms only from requests the replica accepted
        options["Colorizer"]["max_ongoing_requests"] = max(
            config.colorizer.max_ongoing_requests, config.batching.max_batch_size
        )
    return options


def build(args: dict[str, Any] | ServeConfig | None = None):
    """The application (Ray Serve's builder: `import_path: chromaref.serving.app:build`).

    Raises:
        pydantic.ValidationError: an unknown key or a bad value in `args`.
    """
    config = args if isinstance(args, ServeConfig) else ServeConfig.model_validate(args or {})
    settings = config.model_dump(mode="json")
    options = deployment_options(config)
    retriever = Retriever.options(**options["Retriever"]).bind(settings)
    colorizer = Colorizer.options(**options["Colorizer"]).bind(settings)
    return Gateway.options(**options["Gateway"]).bind(retriever, colorizer, settings)
