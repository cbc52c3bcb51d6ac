"""Fixtures for the test orchestrator's own tests: an HTTP client, orchestrators, fake worker pods."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from byoc_testenv.orchestrator import TestOrchestrator
from byoc_testenv.trickle import TrickleServer

from tests.router.fake_pod import FakePod

SECRET = "orch-secret"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def make_orch(trickle_server: TrickleServer) -> AsyncIterator[Callable[..., Any]]:
    """Start orchestrators wired to the session's trickle server, with short Live Runner timers."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(**options: Any) -> TestOrchestrator:
            defaults: dict[str, Any] = {
                "secret": SECRET,
                "trickle_base_url": trickle_server.base_url,
                "heartbeat_interval": 0.1,
                "heartbeat_ttl": 0.5,
                "health_interval": 0.1,
                "health_timeout": 0.5,
                "o2r_interval": 0.2,
            }
            return await stack.enter_async_context(TestOrchestrator.start(**{**defaults, **options}))

        yield make


@pytest.fixture
async def orch(make_orch: Callable[..., Any]) -> TestOrchestrator:
    return await make_orch()


@pytest.fixture
async def make_pod() -> AsyncIterator[Callable[..., Any]]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(**options: Any) -> FakePod:
            return await stack.enter_async_context(FakePod.start(**options))

        yield make
