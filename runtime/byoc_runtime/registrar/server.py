"""The registrar's own small HTTP port: ``/health`` (liveness, and what it knows), ``/ready`` (the worker's
readiness), ``/metrics``, ``/drain``.

``/drain`` (GET or POST) starts draining and answers once the runner is unregistered everywhere. Pointed at by
the worker container's ``preStop`` ``httpGet`` hook, it holds the worker's SIGTERM back until its sessions ended,
whatever image the worker runs.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from .metrics import CONTENT_TYPE
from .registrar import Registrar

REGISTRAR_KEY = web.AppKey("registrar", Registrar)


async def health(request: web.Request) -> web.Response:
    return web.json_response(request.app[REGISTRAR_KEY].describe())


async def ready(request: web.Request) -> web.Response:
    """The worker's readiness as probes need it: 200 only while its ``/health`` says IDLE or OK. A PyTrickle
    worker answers ``/health`` with 200 in every state (LOADING and ERROR too), so its pod's readiness and startup
    probes point here instead."""
    worker = request.app[REGISTRAR_KEY].worker
    state = worker.state.health if worker is not None else "UNREACHABLE"
    if worker is not None and worker.state.ready:
        return web.json_response({"ready": True, "status": state})
    return web.json_response({"ready": False, "status": state, "message": f"worker not ready: {state}"}, status=503)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[REGISTRAR_KEY].metrics.render(), headers={"Content-Type": CONTENT_TYPE})


async def drain(request: web.Request) -> web.Response:
    registrar = request.app[REGISTRAR_KEY]
    await asyncio.shield(registrar.drain())  # a hook that gives up must not cancel the drain
    return web.json_response({"drained": True, "orchestrators": [r.describe() for r in registrar.registrations]})


def create_app(registrar: Registrar) -> web.Application:
    app = web.Application()
    app[REGISTRAR_KEY] = registrar
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_route("GET", "/drain", drain)
    app.router.add_route("POST", "/drain", drain)
    return app
