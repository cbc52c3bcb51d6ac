"""The router's REST routes under fuzzed bodies and headers (hypothesis), in front of two real workers (the
runtime's app, one slot each) over real HTTP: never a 5xx, a 2xx only for a start the workers take, a JSON
reason on every refusal; after the streams stop, no pin, per-stream lock, task or client session is left."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pydantic
import pytest_asyncio
from byoc_edge.router.pods import StaticPods
from byoc_edge.schema import StreamStartRequest
from hypothesis import HealthCheck, given, settings

from ..router.conftest import RunningRouter, serve_router
from ..runtime.support import RunningWorker, running_worker
from .leaks import open_client_sessions, runtime_tasks, settle
from .rest_bodies import Call, calls

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Routed:
    router: RunningRouter
    workers: list[RunningWorker]
    http: aiohttp.ClientSession
    tasks: set[asyncio.Task[object]]
    clients: set[aiohttp.ClientSession]

    async def send(self, call: Call) -> tuple[int, dict[str, object]]:
        url = self.router.url + call.path
        async with self.http.request(call.method, url, headers=call.headers, data=call.body) as resp:
            assert resp.content_type == "application/json", (call, resp.status, await resp.text())
            return resp.status, await resp.json()

    async def stop_all(self) -> None:
        for rt in self.workers:
            await asyncio.gather(*(s.stop("test cleanup") for s in list(rt.worker.sessions)))
        router = self.router.router
        await router.poll_pods()  # the router forgets streams its pods no longer run
        await settle(lambda: [*router.pins, *router._locks])  # per-stream locks must not pile up
        await settle(lambda: runtime_tasks() - self.tasks)
        await settle(lambda: open_client_sessions() - self.clients)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def routed() -> AsyncIterator[Routed]:
    async with contextlib.AsyncExitStack() as stack:
        workers = [await stack.enter_async_context(running_worker(capacity=1)) for _ in range(2)]
        for rt in workers:
            await rt.wait_health("IDLE")
        source = StaticPods([rt.base_url for rt in workers])
        router = await stack.enter_async_context(serve_router(source, sessions_per_pod=1, status_timeout=5))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        yield Routed(router, workers, http, runtime_tasks(), open_client_sessions())


def takes(call: Call) -> bool:
    """Whether a worker starts this stream (the router judges no body, the pod does)."""
    if not call.is_json_object or "Livepeer-Session-Id" in call.headers:
        return False
    try:
        StreamStartRequest.model_validate(call.json)
    except pydantic.ValidationError:
        return False
    return True


@SETTINGS
@given(call=calls())
async def test_every_answer_is_a_reason_never_a_crash(routed: Routed, call: Call) -> None:
    try:
        status, body = await routed.send(call)
        assert status < 500, (call, status, body)
        if status >= 400:
            assert body["status"] == "error" and body["message"], (call, body)
        if call.path.removeprefix("/api") in ("/stream/start", "/live-video-to-video"):
            assert (status == 200) == takes(call), (call, status, body)
        assert (await routed.send(Call("GET", "/health")))[0] == 200
    finally:
        await routed.stop_all()


@SETTINGS
@given(call=calls())
async def test_calls_with_streams_running_answer_for_them_or_refuse(routed: Routed, call: Call) -> None:
    """Both slots taken, so a start is refused (503, capacity) and pinned calls reach real sessions."""
    try:
        for sid in ("one", "two"):
            headers = {"X-Stream-Id": sid, "Content-Type": "application/json"}
            start = b'{"gateway_request_id": "%s"}' % sid.encode()
            started = await routed.send(Call("POST", "/stream/start", headers, start))
            assert started[0] == 200, started
        status, body = await routed.send(call)
        if status >= 500:
            assert status == 503 and body["reason"] == "capacity", (call, status, body)
            # the router judges no body: with no free slot it refuses any start, valid or not
            assert call.path.removeprefix("/api") in ("/stream/start", "/live-video-to-video"), call
        assert (await routed.send(Call("GET", "/health")))[0] == 200
    finally:
        await routed.stop_all()
