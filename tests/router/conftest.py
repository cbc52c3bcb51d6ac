"""Fixtures for the router tests: fake worker pods and routers in front of them, over real HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from byoc_edge.router.app import create_app
from byoc_edge.router.config import RouterConfig
from byoc_edge.router.pods import PodSource, StaticPods
from byoc_edge.router.streams import Router

from .fake_pod import FakePod


class RunningRouter:
    def __init__(self, router: Router, runner: web.AppRunner, url: str) -> None:
        self.router = router
        self.runner = runner
        self.url = url

    async def close(self) -> None:
        await self.runner.cleanup()


@contextlib.asynccontextmanager
async def serve_router(source: PodSource, **config: Any) -> AsyncIterator[RunningRouter]:
    settings = {"pods": ("unused",), "refresh_interval": 60, "status_interval": 60, "status_timeout": 1, **config}
    router = Router(RouterConfig(**settings), source=source)
    runner = web.AppRunner(create_app(router), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    running = RunningRouter(router, runner, f"http://127.0.0.1:{port}")
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def make_pod() -> AsyncIterator[Callable[..., Any]]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(**options: Any) -> FakePod:
            return await stack.enter_async_context(FakePod.start(**options))

        yield make


@pytest.fixture
async def make_router() -> AsyncIterator[Callable[..., Any]]:
    """``await make_router(pods_or_source, **RouterConfig fields)``: routers stopped at the end of the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(pods: list[FakePod] | PodSource, **config: Any) -> RunningRouter:
            source = StaticPods([p.url for p in pods]) if isinstance(pods, list) else pods
            return await stack.enter_async_context(serve_router(source, **config))

        yield make
