"""The HTTP side of the worker REST contract, shared by the worker API (``byoc_runtime.api.server``) and the
router (``router/app.py``): the routes' prefixes, the stream key, JSON bodies, the error body and the middlewares.

One error body for every refusal, from a worker or a router::

    {"status": "error", "message": "<for people>", "reason": "<for programs>", ...details}

``status`` and ``message`` are what pytrickle's server answers (``pytrickle/server.py``) and what its clients and
go-livepeer's gateway read; ``reason`` is one short token per kind of refusal (``capacity``, ``no_stream_id``...),
so a router in front of pods answers the way the pods do. go-livepeer passes a worker's error body through to the
gateway, so the message and details never name a pod address, a URL or an exception's text: those go to the log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from .bearer import BearerToken
from .schema import MAX_JSON_DEPTH, nesting_depth

log = logging.getLogger(__name__)

STREAM_ID_HEADER = "X-Stream-Id"
# Every route at the root and again under /api (older pytrickle releases and the public docs use the prefix).
PREFIXES = ("", "/api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_reply(status: int, message: str, reason: str, **extra: Any) -> web.Response:
    return web.json_response({"status": "error", "message": message, "reason": reason, **extra}, status=status)


class HttpError(Exception):
    """A refusal raised from inside a handler; ``error_middleware`` answers it with ``error_reply``."""

    def __init__(self, status: int, message: str, reason: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.extra = extra

    def reply(self) -> web.Response:
        return error_reply(self.status, str(self), self.reason, **self.extra)


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; ``HttpError`` 400 (``invalid_body``) saying why it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, f"body is not valid JSON: {exc}", "invalid_body") from None
    except RecursionError:  # json's parser recurses per nesting level
        raise HttpError(400, "body is nested too deeply", "invalid_body") from None
    if nesting_depth(data) > MAX_JSON_DEPTH:
        raise HttpError(400, f"body is nested deeper than {MAX_JSON_DEPTH} levels", "invalid_body")
    if not isinstance(data, dict):
        raise HttpError(400, "body must be a JSON object", "invalid_body")
    return data


def is_json(request: web.Request) -> bool:
    return request.content_type.startswith("application/json")


async def json_body(request: web.Request) -> dict[str, Any]:
    """A request's JSON object body; a non-JSON content type or body is a 400 (as in pytrickle)."""
    if not is_json(request):
        raise HttpError(
            400, f"Content-Type must be application/json, got {request.content_type or 'none'!r}", "invalid_body"
        )
    return json_object(await request.read())


def stream_key(request: web.Request, body: dict[str, Any]) -> str | None:
    """The stream a call is about: ``X-Stream-Id`` (go-livepeer sends it on every call), else the body's
    ``gateway_request_id``/``stream_id``, else ``?stream_id=``."""
    for value in (
        request.headers.get(STREAM_ID_HEADER),
        body.get("gateway_request_id"),
        body.get("stream_id"),
        request.query.get("stream_id"),
    ):
        if isinstance(value, str) and value:
            return value
    return None


def describe_client_error(exc: BaseException) -> str:
    """A client-side exception for logs: connection errors name only host and port; others just their type,
    since aiohttp's response errors can carry request URLs (trickle URLs are credentials) and headers."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port}"
    return type(exc).__name__


# -- middlewares ---------------------------------------------------------------------------------------------


def is_stream_route(path: str) -> bool:
    return "/stream/" in path or path.endswith("/live-video-to-video")


def auth_middleware(token: BearerToken) -> Any:
    """The registered token as ``Bearer`` on stream routes. A 401 makes go-livepeer drop the capability, so only a
    wrong or missing token gets one; a token that cannot be read is a 503. A router forwards the header to its
    pods, which check it too."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_stream_route(request.path):
            refusal = token.refusal(request.headers.get("Authorization", ""))
            if refusal:
                why = "unauthorized" if refusal.status == 401 else "token_unavailable"
                return error_reply(refusal.status, refusal.message, why)
        return await handler(request)

    return middleware


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as the one error body, aiohttp's own 404/405 included; an unexpected exception is logged and
    answered with a fixed text."""
    try:
        return await handler(request)
    except HttpError as exc:
        return exc.reply()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_reply(exc.status, exc.reason, "http")
    except Exception:
        log.exception("unhandled error", extra={"method": request.method, "path": request.path})
        return error_reply(500, "internal error", "internal")


def middlewares(token: BearerToken) -> list[Any]:
    """The middleware set of every REST app here: errors outermost, so a refusal from auth has the same body."""
    return [error_middleware, auth_middleware(token)]
