"""Fixtures for the gateway tests: test orchestrators, each on its own trickle server (as upstream, where every
orchestrator serves its own), scripted workers, gateways with short search timeouts, and a small test video."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest
from byoc_runtime.media.testsource import SourceSpec, generate_segments
from byoc_testenv.gateway import Gateway, GatewayTimings
from byoc_testenv.orchestrator import TestOrchestrator
from byoc_testenv.trickle import TrickleServer

from .scripted_worker import Script, ScriptedWorker

SECRET = "gateway-test-secret"
CAPABILITY = "gateway-test"
# Token answers on two busy cores can take longer than upstream's 0.5 s / 1 s search.
SEARCH = {"orch_search_timeout": 5.0, "orch_response_timeout": 4.0}


class TricklePool:
    """Trickle servers started on demand and kept for the session: the n-th orchestrator of a test gets the n-th."""

    def __init__(self) -> None:
        self.servers: list[TrickleServer] = []

    def get(self, index: int) -> TrickleServer:
        while len(self.servers) <= index:
            self.servers.append(TrickleServer.start())
        return self.servers[index]


@pytest.fixture(scope="session")
def trickle_pool() -> Iterator[TricklePool]:
    pool = TricklePool()
    try:
        yield pool
    finally:
        for server in pool.servers:
            server.stop()


@pytest.fixture(scope="session")
def segments() -> list[bytes]:
    """8 s of 128x96 test pattern at 15 fps, in 1 s MPEG-TS segments."""
    return generate_segments(SourceSpec(width=128, height=96, fps=15, seconds=8.0, audio_codec=None))


@pytest.fixture
async def make_worker() -> AsyncIterator[Callable[..., Awaitable[ScriptedWorker]]]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(**script: Any) -> ScriptedWorker:
            return await stack.enter_async_context(ScriptedWorker.start(Script(**script)))

        yield make


@pytest.fixture
async def make_orch(
    trickle_pool: TricklePool, make_worker: Any
) -> AsyncIterator[Callable[..., Awaitable[TestOrchestrator]]]:
    """``await make_orch(worker_url, capacity=1)``: an orchestrator with ``CAPABILITY`` registered to the worker."""
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())
        made = 0

        async def make(worker_url: str, capacity: int = 1, **options: Any) -> TestOrchestrator:
            nonlocal made
            trickle = trickle_pool.get(made)
            made += 1
            orch = await stack.enter_async_context(
                TestOrchestrator.start(secret=SECRET, trickle_base_url=trickle.base_url, **options)
            )
            capability = {"name": CAPABILITY, "url": worker_url, "capacity": capacity}
            async with http.post(orch.url + "/capability/register", json=capability, headers={"Authorization": SECRET}):
                pass
            return orch

        yield make


@pytest.fixture
async def make_gateway(make_orch: Any) -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    """``await make_gateway(orchestrators, **timings)``; closed (its streams stopped) before the orchestrators."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(orchestrators: list[TestOrchestrator], **timings: Any) -> Gateway:
            gateway = Gateway([o.url for o in orchestrators], GatewayTimings(**{**SEARCH, **timings}))
            return await stack.enter_async_context(gateway)

        yield make
