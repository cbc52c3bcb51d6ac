"""Fixtures for the registrar tests: orchestrators (no trickle server needed), worker stand-ins, a client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from byoc_testenv.orchestrator import TestOrchestrator

from tests.liverunner.support import SECRET, LiveRunnerClient
from tests.router.fake_pod import FakePod

from .stub_worker import StubWorker


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "orch-secret"
    path.write_text(SECRET + "\n")
    return path


@pytest.fixture
async def make_orch() -> AsyncIterator[Callable[..., Any]]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(**options: Any) -> TestOrchestrator:
            # TTL well above a heartbeat delayed by a busy machine
            defaults: dict[str, Any] = {"secret": SECRET, "heartbeat_interval": 0.2, "heartbeat_ttl": 3.0}
            return await stack.enter_async_context(TestOrchestrator.start(**{**defaults, **options}))

        yield make


@pytest.fixture
async def stub_worker() -> AsyncIterator[StubWorker]:
    async with StubWorker.start() as worker:
        yield worker


@pytest.fixture
async def make_pod() -> AsyncIterator[Callable[..., Any]]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(**options: Any) -> FakePod:
            return await stack.enter_async_context(FakePod.start(**options))

        yield make


@pytest.fixture
def client_for(http: aiohttp.ClientSession) -> Callable[[TestOrchestrator], LiveRunnerClient]:
    return lambda orch: LiveRunnerClient(orch.url, http)
