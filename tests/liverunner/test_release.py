"""Releasing a Live Runner session at the orchestrator, over real HTTP, with upstream's stop-callback answers
(go-livepeer ``server/ai_http.go`` ``StopLiveRunnerSessionInternal``, ``ai/runner/live_runner.go``
``ValidSessionToken``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from byoc_edge.liverunner import SessionContext
from byoc_runtime.liverunner.control import stop_session
from byoc_testenv.local_http import serving


@contextlib.asynccontextmanager
async def orchestrator(answers: list[tuple[int, str]]) -> AsyncIterator[tuple[str, list[str]]]:
    """A stop callback answering `answers` in turn (then 204), recording the tokens it was sent."""
    seen: list[str] = []

    async def stop(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Livepeer-Session-Token", ""))
        if len(seen) <= len(answers):
            status, message = answers[len(seen) - 1]
            return web.Response(status=status, text=message + "\n")  # Go's http.Error: text and a newline
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/runner/r1/session/s1/stop", stop)
    async with serving(app) as base_url:
        yield f"{base_url}/runner/r1/session/s1", seen


async def test_runner_not_found_is_retried_until_the_session_is_released() -> None:
    # A runner reported not ready keeps its sessions and answers "runner not found": not released yet.
    async with orchestrator([(404, "runner not found"), (404, "runner not found")]) as (url, seen):
        async with aiohttp.ClientSession() as http:
            released = await stop_session(http, SessionContext("s1", "tok", url), retry_for_s=5, first_pause_s=0.05)
    assert released and seen == ["tok", "tok", "tok"]


async def test_a_session_already_gone_counts_as_released_at_once() -> None:
    async with orchestrator([(404, "runner session not found")]) as (url, seen):
        async with aiohttp.ClientSession() as http:
            assert await stop_session(http, SessionContext("s1", "tok", url), retry_for_s=5, first_pause_s=0.05)
    assert len(seen) == 1


async def test_a_refusal_is_not_retried_and_retries_are_bounded() -> None:
    async with orchestrator([(401, "invalid authorization")]) as (url, seen):
        async with aiohttp.ClientSession() as http:
            assert not await stop_session(http, SessionContext("s1", "tok", url), retry_for_s=5, first_pause_s=0.05)
    assert len(seen) == 1
    async with orchestrator([(404, "runner not found")] * 100) as (url, seen):
        async with aiohttp.ClientSession() as http:
            assert not await stop_session(http, SessionContext("s1", "tok", url), retry_for_s=0.3, first_pause_s=0.05)
    assert 2 <= len(seen) < 10
