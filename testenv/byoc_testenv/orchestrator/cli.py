"""The orchestrator's CLI port (go-livepeer ``-cliAddr``, 7935 by default; ``server/webserver.go``): here only
``POST /registerLiveRunners``, without auth as upstream (it trusts whoever reaches a port meant to stay local),
plus ``-liveRunnerConfig``: a runners.json read once at start (``cmd/livepeer/starter/starter.go``: an unreadable
or invalid file stops the orchestrator)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from .live_runner_routes import LiveRunnerRoutes
from .live_runners import RunnerError


class RunnersConfigError(RuntimeError):
    """-liveRunnerConfig could not be read or registered (upstream exits)."""


def cli_app(live: LiveRunnerRoutes) -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/registerLiveRunners", live.register_static)
    return app


async def load_runners_config(live: LiveRunnerRoutes, path: Path) -> int:
    """Register the static runners a runners.json lists; how many."""
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise RunnersConfigError(f"error reading -liveRunnerConfig: {exc}") from None
    try:
        return len(await live.register_static_json(data))
    except RunnerError as exc:
        raise RunnersConfigError(f"error registering -liveRunnerConfig: {exc}") from None
