"""The HTTP edge: JSON errors, the body-size limit, the API key, and decoding uploads.

Every error a client can cause leaves as `{"error": "..."}` with its status; nothing of a
refused request is kept. Uploads are parsed in memory (the body is capped before parsing)
and decoded by the platform's safe loader, never saved under a name the client chose.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from chromaref.platform.errors import ImageLoadError, TooManyPixelsError
from chromaref.platform.images import load_image
from chromaref.serving.config import API_KEY_ENV

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
# The page and the API description carry no data and cost nothing; a browser cannot send a
# header when it navigates, so they stay open and the page asks for the key on a 401.
PUBLIC_DOCUMENTS = frozenset({"/", "/docs", "/openapi.json", "/docs/oauth2-redirect"})


def route_path(scope: Scope) -> str:
    """The request's path inside the application (without the route prefix Serve mounts it
    under), e.g. "/healthz" for GET /chromaref/healthz."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


class ApiError(Exception):
    """A client-facing failure: HTTP status and a one-line message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def error_response(status: int, message: str, headers: dict[str, str] | None = None):
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Every error as `{"error": ...}`: ours, FastAPI's validation, routing, and the rest."""

    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.headers)

    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"] if part != "body")
        return error_response(400, f"{where}: {problem['msg']}")

    async def internal(_request: Request, exc: Exception) -> JSONResponse:
        logger.exception("internal error")
        return error_response(500, f"internal error ({type(exc).__name__}); see the server log")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, internal)


async def _send_error(send: Send, status: int, message: str, headers: dict[str, str]) -> None:
    body = json.dumps({"error": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse a request body over `limit` bytes with 413, before it is parsed or stored:
    by its Content-Length when it declares one, else as soon as the streamed bytes pass it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = f"request body over the limit of {self.limit} bytes"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _send_error(send, 413, too_big, {"connection": "close"})
            return
        received, started = 0, False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _BodyTooLargeError
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLargeError:
            if not started:
                await _send_error(send, 413, too_big, {"connection": "close"})


class _BodyTooLargeError(Exception):
    pass


class ApiKey:
    """With the key's variable ($CHROMAREF_API_KEY) set in the replica's environment:
    `Authorization: Bearer <key>` on every API path (401 otherwise), compared in constant
    time. Health probes and the static page stay open."""

    def __init__(self, app: ASGIApp, variable: str = API_KEY_ENV) -> None:
        self.app = app
        self.key = os.environ.get(variable, "").encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope)
        if (
            scope["type"] != "http"
            or not self.key
            or path in OPEN_PATHS
            or path in PUBLIC_DOCUMENTS
            or scope.get("method") == "OPTIONS"  # CORS preflight carries no credentials
        ):
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = given.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.key):
            challenge = {"www-authenticate": 'Bearer realm="chromaref"'}
            await _send_error(send, 401, "missing or wrong API key", challenge)
            return
        await self.app(scope, receive, send)


def decode_upload(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    """An uploaded file as RGB uint8, by the safe loader (EXIF, modes, bombs).

    Raises:
        ApiError: 413 over the pixel limit, 400 not a readable image.
    """
    try:
        return load_image(data, max_pixels=max_pixels, name=name).rgb
    except TooManyPixelsError as exc:
        raise ApiError(413, str(exc)) from None
    except ImageLoadError as exc:
        raise ApiError(400, str(exc)) from None


def client_label(filename: str | None, fallback: str) -> str:
    """A client's file name, only to echo back: its last path part, printable, 80 chars."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable())[:80]
    return cleaned or fallback
