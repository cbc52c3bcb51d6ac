"""The registrar's own small HTTP port: ``/health`` (liveness, and what it knows), ``/ready`` (the worker's
readiness), ``/metrics``, ``/drain``.

``/drain`` (GET or POST) starts draining and answers once the runner is unregistered everywhere. Pointed at by
the worker container's ``preStop`` ``httpGet`` hook, it holds the worker's SIGTERM back until its sessions ended,
whatever image the worker runs.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..same_pod import from_this_pod
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


# How long a caller from outside the pod waits for the drain to begin (the kubelet sends this container its SIGTERM
# while the worker's preStop calls here, in either order) before it is told nothing is draining.
DRAIN_START_WAIT_S = 5.0


async def drain(request: web.Request) -> web.Response:
    """Answer once drained. Only a caller in this pod starts a drain; the kubelet's preStop ``httpGet`` comes from
    the node and only waits for the drain this container's own SIGTERM starts (sent at the same time), so any
    other pod reaching the port cannot take the runner out of service. A worker container restarted alone (its
    liveness probe) runs the hook with no SIGTERM here: it is answered 409 after ``DRAIN_START_WAIT_S``."""
    registrar = request.app[REGISTRAR_KEY]
    if from_this_pod(request):
        task = registrar.drain()
    else:
        found = await registrar.drain_requested(DRAIN_START_WAIT_S)
        if found is None:
            return web.json_response({"drained": False, "message": "not draining"}, status=409)
        task = found
    await asyncio.shield(task)  # a hook that gives up must not cancel the drain
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
