"""Fixtures for the Live Runner tests: orchestrators on the session's trickle server, a client, a secret file."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from byoc_testenv.orchestrator import TestOrchestrator
from byoc_testenv.trickle import TrickleServer

from .support import SECRET, LiveRunnerClient, media_segments


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "orch-secret"
    path.write_text(SECRET + "\n")  # a trailing newline, as `echo` leaves it in a Secret
    return path


@pytest.fixture
async def make_orch(trickle_server: TrickleServer) -> AsyncIterator[Callable[..., Any]]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(**options: Any) -> TestOrchestrator:
            defaults: dict[str, Any] = {
                "secret": SECRET,
                "trickle_base_url": trickle_server.base_url,
                "heartbeat_interval": 0.2,
                "heartbeat_ttl": 2.0,
                "o2r_interval": 1.0,
            }
            return await stack.enter_async_context(TestOrchestrator.start(**{**defaults, **options}))

        yield make


@pytest.fixture
def client_for(http: aiohttp.ClientSession) -> Callable[[TestOrchestrator], LiveRunnerClient]:
    return lambda orch: LiveRunnerClient(orch.url, http)


@pytest.fixture(scope="session")
def segments() -> Callable[..., list[bytes]]:
    return media_segments
