"""The worker's HTTP API (aiohttp): what the orchestrator, routers and operators call.

Routes follow pytrickle ``server.py`` (v0.1.6) and what go-livepeer ``byoc/stream_orchestrator.go`` calls:
``/stream/start|stop|params`` (POST), ``/stream/status`` (GET), the ``/live-video-to-video`` start alias,
``/health``, ``/ready``, ``/version``, ``/app-version``, ``/hardware/info|stats``, all at the root and again
under ``/api`` (older pytrickle releases and the public docs use the prefix). ``/metrics`` adds Prometheus.
Prefixes, the stream key, JSON bodies, the error body and the middlewares are ``byoc_edge.rest``, shared with the
router, so a router in front of pods answers as they do.

go-livepeer sends ``X-Stream-Id`` on every call and ``Authorization: Bearer <token>`` when the capability was
registered with a token; a 401 makes it drop the capability, so it is only sent for a wrong/missing token.
``/stream/stop`` may arrive with no body, or with a plain-text reason ("stream ended"), so its body is optional.

Live Runner (protocols.md 3b): a start carrying the ``Livepeer-Session-*`` headers of an orchestrator's app proxy
is a Live Runner session (``liverunner/sessions.py``); on proxied requests ``Livepeer-Session-Id`` names the
stream, so a client only ever reaches its own. ``POST /drain`` makes new starts answer 503 ``draining`` while
running streams go on (the registrar sidecar calls it before unregistering); ``GET /drain?wait=true`` (the pod's
preStop hook) also waits until they ended or the drain grace is over. Both are refused through a proxy.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from byoc_edge.bearer import BearerToken
from byoc_edge.liverunner import SESSION_CONTROL_HEADER, SESSION_HEADERS, SESSION_ID_HEADER, SessionContext
from byoc_edge.rest import (
    PREFIXES,
    STREAM_ID_HEADER,
    HttpError,
    error_reply,
    is_json,
    json_body,
    json_object,
    middlewares,
    stream_key,
)
from byoc_edge.same_pod import from_this_pod
from byoc_edge.schema import StreamParams, StreamStartRequest, field_errors, output_size_refusal
from pydantic import ValidationError

from .. import __version__, hardware
from ..capacity import StartInvalid, StartRefused
from ..liverunner.control import CallbackError
from ..liverunner.sessions import LiveRunnerSessions
from ..metrics import CONTENT_TYPE
from ..session import Session
from ..worker import Health, Worker

log = logging.getLogger(__name__)

WORKER_KEY = web.AppKey("worker", Worker)
LIVE_RUNNER_KEY = web.AppKey("live_runner", LiveRunnerSessions)
TOKEN_KEY = web.AppKey("token", BearerToken)


def invalid(exc: ValidationError) -> web.Response:
    """A body that does not validate: 400 with the field, as pytrickle answers (not aiohttp's 422)."""
    errors = field_errors(exc)
    return error_reply(400, f"invalid {errors[0]['field']}: {errors[0]['message']}", "invalid_field", errors=errors)


def _session_key(request: web.Request, body: dict[str, Any] | None = None) -> str | None:
    if request.headers.get(SESSION_ID_HEADER):
        return request.headers[SESSION_ID_HEADER]  # set by the orchestrator's proxy: a client's own session only
    return stream_key(request, body or {})


def _select_session(worker: Worker, key: str | None) -> Session:
    if not len(worker.sessions):
        raise HttpError(400, "No active stream", "no_stream_id")
    session = worker.find(key)
    if session is None:
        if key:
            raise HttpError(404, f"no stream {key!r}", "unknown_stream", active_streams=len(worker.sessions))
        message = f"{STREAM_ID_HEADER} header required: {len(worker.sessions)} streams are running"
        raise HttpError(400, message, "no_stream_id")
    return session


# -- stream routes --------------------------------------------------------------------------------------


def _refused(worker: Worker, exc: StartRefused) -> web.Response:
    return error_reply(
        503,
        str(exc),
        exc.reason,
        current_state=worker.health.value,
        capacity=worker.sessions.capacity,
        active_streams=len(worker.sessions),
    )


def _live_runner_context(request: web.Request) -> SessionContext | None:
    try:
        context = SessionContext.from_headers(request.headers)
    except ValueError as exc:
        raise HttpError(400, str(exc), "invalid_session") from None
    if context is not None:
        why = request.app[WORKER_KEY].origins.refusal(context.control_url)
        if why is not None:  # checked before any callback: the worker never opens it
            raise HttpError(400, f"{SESSION_CONTROL_HEADER} {why}", "origin")
    return context


async def start_live_runner(request: web.Request, body: dict[str, Any], context: SessionContext) -> web.Response:
    worker = request.app[WORKER_KEY]
    try:
        reply = await request.app[LIVE_RUNNER_KEY].start(context, body)
    except ValidationError as exc:
        return invalid(exc)
    except StartRefused as exc:
        return _refused(worker, exc)
    except CallbackError as exc:
        # Its text may name the orchestrator's internal address: the log has it, the client a fixed reason.
        log.warning("session %s: %s", context.session_id, exc)
        return error_reply(502, "the orchestrator's session callback failed", "orchestrator")
    except StartInvalid as exc:
        if exc.reason == "origin":  # the orchestrator's own channels are off the allowed origins
            return error_reply(502, f"orchestrator channels refused: {exc}", "orchestrator")
        return error_reply(exc.status, str(exc), exc.reason)
    return web.json_response(reply)


async def start_stream(request: web.Request) -> web.Response:
    worker = request.app[WORKER_KEY]
    body = await json_body(request)
    context = _live_runner_context(request)
    if context is not None:
        return await start_live_runner(request, body, context)
    try:
        start = StreamStartRequest.model_validate(body)
    except ValidationError as exc:
        return invalid(exc)
    stream_id = request.headers.get(STREAM_ID_HEADER) or start.gateway_request_id
    if not stream_id:
        return error_reply(
            400, f"{STREAM_ID_HEADER} header or a non-empty gateway_request_id is required", "no_stream_id"
        )
    if not start.gateway_request_id:
        start = start.model_copy(update={"gateway_request_id": stream_id})
    try:
        session, created = await worker.start_session(start, stream_id)
    except StartRefused as exc:
        return _refused(worker, exc)
    except StartInvalid as exc:
        return error_reply(exc.status, str(exc), exc.reason)
    return web.json_response(
        {
            "status": "success",
            "message": "Stream started successfully" if created else "Stream already running",
            "request_id": session.request_id,
            "stream_id": session.stream_id,
        }
    )


async def stop_stream(request: web.Request) -> web.Response:
    worker = request.app[WORKER_KEY]
    body: dict[str, Any] | None = None
    if request.can_read_body and is_json(request):
        try:
            body = json_object(await request.read())
        except HttpError:
            body = None  # go-livepeer may forward a plain-text reason; it does not matter here
    session = _select_session(worker, _session_key(request, body))
    await session.stop("stopped by request")
    return web.json_response({"status": "success", "message": "Stream stopped successfully"})


async def update_params(request: web.Request) -> web.Response:
    worker = request.app[WORKER_KEY]
    body = await json_body(request)
    try:
        StreamParams.model_validate(body)
    except ValidationError as exc:
        return invalid(exc)
    too_big = output_size_refusal(body, worker.config.max_output_pixels)
    if too_big:
        return error_reply(400, too_big, "output_size")
    session = _select_session(worker, _session_key(request))
    try:
        applied = await session.update_params(body)
    except Exception as exc:  # the processor's update_params raised: pytrickle answers 500
        # The exception's text stays in the log: go-livepeer passes this body on to the gateway.
        log.warning("stream %s: update_params failed: %r", session.stream_id, exc)
        return error_reply(500, "Parameter update failed", "params_failed")
    return web.json_response({"status": "success", "message": "Parameters updated successfully", "params": applied})


async def stream_status(request: web.Request) -> web.Response:
    worker = request.app[WORKER_KEY]
    key = _session_key(request)
    if key:
        session = worker.find(key)
        if session is None:
            return error_reply(404, f"no stream {key!r}", "unknown_stream")
        return web.json_response(session.status())
    return web.json_response(worker.status())


async def drain(request: web.Request) -> web.Response:
    """Refuse new streams from now on; running ones continue. Only for the pod itself (its registrar, or a preStop
    ``exec`` hook: ``byoc-drain``) or a caller with the worker's token: draining is for good,
    and anyone else reaching the port could take the pod out of service. ``GET /drain?wait=true`` is answered once
    no stream runs or the drain grace is over, holding the SIGTERM back until then."""
    if any(name in request.headers for name in SESSION_HEADERS):
        return error_reply(403, "drain is not available through an orchestrator", "forbidden")
    if not from_this_pod(request):
        token = request.app[TOKEN_KEY]
        refusal = token.refusal(request.headers.get("Authorization", "")) if token.required else None
        if not token.required or refusal is not None:
            return error_reply(
                403, "drain is only for this pod itself, or a caller with the worker's token", "forbidden"
            )
    worker = request.app[WORKER_KEY]
    if request.query.get("wait", "").lower() in ("1", "true", "yes"):
        idle = await asyncio.shield(worker.drained())  # a hook that gives up must not cancel the drain
        return web.json_response(
            {"status": "success", "draining": True, "drained": idle, "active_streams": len(worker.sessions)}
        )
    worker.drain()
    return web.json_response({"status": "success", "draining": True, "active_streams": len(worker.sessions)})


# -- system routes --------------------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    worker = request.app[WORKER_KEY]
    return web.json_response(
        {
            "status": worker.health.value,
            "active_streams": len(worker.sessions),
            "capacity": worker.sessions.capacity,
            "available": 0 if worker.draining else max(0, worker.sessions.room),
            "draining": worker.draining,
        }
    )


async def ready(request: web.Request) -> web.Response:
    """Whether this pod can take work: its processors are loaded and not broken (IDLE or OK, full or draining
    included: a draining pod still serves its streams, and a static Live Runner entry whose health check fails has
    its sessions released at once). ``/health`` keeps pytrickle's answer, which is 200 in every state; probes,
    static runner entries and the operator use this instead."""
    worker = request.app[WORKER_KEY]
    state = worker.health
    if state in (Health.IDLE, Health.OK):
        return web.json_response({"ready": True, "status": state.value})
    return error_reply(503, f"not ready: {state.value}", "not_ready", ready=False, current_state=state.value)


async def version(request: web.Request) -> web.Response:
    config = request.app[WORKER_KEY].config
    return web.json_response({"pipeline": config.pipeline, "model_id": config.capability_name, "version": __version__})


async def app_version(request: web.Request) -> web.Response:
    return web.json_response({"version": __version__})


async def hardware_info(request: web.Request) -> web.Response:
    config = request.app[WORKER_KEY].config
    return web.json_response(
        {"pipeline": config.pipeline, "model_id": config.capability_name, "gpu_info": hardware.gpu_compute_info()}
    )


async def hardware_stats(request: web.Request) -> web.Response:
    config = request.app[WORKER_KEY].config
    return web.json_response(
        {"pipeline": config.pipeline, "model_id": config.capability_name, "gpu_stats": hardware.gpu_utilization_stats()}
    )


async def metrics(request: web.Request) -> web.Response:
    body = request.app[WORKER_KEY].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def create_app(worker: Worker) -> web.Application:
    token = BearerToken(worker.config.token, worker.config.token_file)
    app = web.Application(middlewares=middlewares(token))
    app[WORKER_KEY] = worker
    app[TOKEN_KEY] = token
    app[LIVE_RUNNER_KEY] = live_runner = LiveRunnerSessions(worker)
    for prefix in PREFIXES:
        app.router.add_post(f"{prefix}/stream/start", start_stream)
        app.router.add_post(f"{prefix}/live-video-to-video", start_stream)
        app.router.add_post(f"{prefix}/stream/stop", stop_stream)
        app.router.add_post(f"{prefix}/stream/params", update_params)
        app.router.add_get(f"{prefix}/stream/status", stream_status)
        app.router.add_post(f"{prefix}/drain", drain)
        app.router.add_get(f"{prefix}/drain", drain)  # preStop httpGet hooks can only GET
        app.router.add_get(f"{prefix}/health", health)
        app.router.add_get(f"{prefix}/ready", ready)
        app.router.add_get(f"{prefix}/version", version)
        app.router.add_get(f"{prefix}/app-version", app_version)
        app.router.add_get(f"{prefix}/hardware/info", hardware_info)
        app.router.add_get(f"{prefix}/hardware/stats", hardware_stats)
    app.router.add_get("/metrics", metrics)

    async def on_startup(_: web.Application) -> None:
        await worker.start()

    async def on_cleanup(_: web.Application) -> None:
        await worker.close()
        await live_runner.close()  # after the sessions stopped: their release callbacks finish here

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
