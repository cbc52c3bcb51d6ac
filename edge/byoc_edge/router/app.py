"""The router's HTTP wiring: the worker's routes (both prefixes) onto the ``Router``, plus its own version and
metrics, with the same middlewares and error body as a worker (``byoc_edge.rest``)."""

from __future__ import annotations

from aiohttp import web

from .. import __version__
from ..rest import PREFIXES, Handler, middlewares
from .metrics import CONTENT_TYPE
from .streams import Router

ROUTER_KEY = web.AppKey("router", Router)


def create_app(router: Router) -> web.Application:
    app = web.Application(middlewares=middlewares(router.token))
    app[ROUTER_KEY] = router

    def pinned(route: str) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await router.pinned_call(request, route)

        return handler

    async def health(request: web.Request) -> web.Response:
        return web.json_response(router.health())

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=router.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def version(request: web.Request) -> web.Response:
        return web.json_response({"router": "byoc-router", "version": __version__})

    for prefix in PREFIXES:
        app.router.add_post(f"{prefix}/stream/start", router.start_stream)
        app.router.add_post(f"{prefix}/live-video-to-video", router.start_stream)
        app.router.add_post(f"{prefix}/stream/params", pinned("params"))
        app.router.add_post(f"{prefix}/stream/stop", pinned("stop"))
        app.router.add_get(f"{prefix}/stream/status", pinned("status"))
        app.router.add_get(f"{prefix}/health", health)
        app.router.add_get(f"{prefix}/version", router.pod_info)
        app.router.add_get(f"{prefix}/app-version", router.pod_info)
        app.router.add_get(f"{prefix}/hardware/info", router.pod_info)
        app.router.add_get(f"{prefix}/hardware/stats", router.pod_info)
    app.router.add_get("/router/version", version)
    app.router.add_get("/metrics", metrics)

    async def on_startup(_: web.Application) -> None:
        await router.start()

    async def on_cleanup(_: web.Application) -> None:
        await router.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
