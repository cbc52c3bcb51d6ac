"""A BYOC worker that does what it is told instead of processing media: answer the start with a status, write
events, output segments and data lines at set paces (or never), close its output, and record every call and
every control message. Real HTTP and real trickle channels; the worker REST contract of go-livepeer's
``byoc/stream_orchestrator.go`` calls (``POST /stream/start|params|stop``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from byoc_runtime import trickle
from byoc_runtime.trickle import JSONL, TrickleError


@dataclass(frozen=True)
class Script:
    start_status: int = 200
    events_every: float | None = 0.2  # seconds between status events; None: never an event
    output_every: float | None = None  # seconds between output segments; None: no output
    close_output_after: float | None = None  # DELETE the -out channel this long after the start
    data_lines: tuple[str, ...] = ()  # written on -data, one segment, once the gateway reads it (2 s after start)


@dataclass(frozen=True)
class Call:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class ControlMessage:
    at: float  # time.monotonic() of its arrival
    message: Any  # keepalives included


@dataclass
class Running:
    start: dict[str, Any]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    control: list[ControlMessage] = field(default_factory=list)


class ScriptedWorker:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.calls: list[Call] = []
        self.streams: dict[str, Running] = {}  # by X-Stream-Id, kept after the stop
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, script: Script) -> AsyncIterator[ScriptedWorker]:
        worker = cls(script)
        app = web.Application()
        app.router.add_post("/stream/start", worker._start)
        app.router.add_post("/stream/params", worker._record_only)
        app.router.add_post("/stream/stop", worker._stop)
        worker._runner = web.AppRunner(app, access_log=None)
        await worker._runner.setup()
        site = web.TCPSite(worker._runner, "127.0.0.1", 0)
        await site.start()
        worker.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        worker._http = aiohttp.ClientSession()
        try:
            yield worker
        finally:
            for running in worker.streams.values():
                await _cancel(running.tasks)
            await worker._runner.cleanup()
            await worker._http.close()

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    async def _record(self, request: web.Request) -> Call:
        call = Call(request.path, dict(request.headers), await request.read(), time.monotonic())
        self.calls.append(call)
        return call

    async def _record_only(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"status": "success"})

    async def _start(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        body, script = call.json(), self.script
        if script.start_status != 200:
            return web.json_response({"status": "error", "message": "scripted refusal"}, status=script.start_status)
        running = Running(body)
        self.streams[request.headers["X-Stream-Id"]] = running
        jobs: list[Coroutine[Any, Any, None]] = [self._read_control(body["control_url"], running)]
        if script.events_every is not None:
            jobs.append(self._events(body["events_url"], script.events_every))
        if script.output_every is not None and "publish_url" in body:
            jobs.append(self._output(body["publish_url"], script.output_every))
        if script.close_output_after is not None and "publish_url" in body:
            jobs.append(self._close_later(body["publish_url"], script.close_output_after))
        if script.data_lines and "data_url" in body:
            jobs.append(self._data(body["data_url"], script.data_lines))
        running.tasks = [asyncio.create_task(job) for job in jobs]
        return web.json_response({"status": "success"})

    async def _stop(self, request: web.Request) -> web.Response:
        await self._record(request)
        running = self.streams.get(request.headers.get("X-Stream-Id", ""))
        if running is not None:
            await _cancel(running.tasks)
        return web.json_response({"status": "success"})

    async def _read_control(self, url: str, running: Running) -> None:
        with contextlib.suppress(TrickleError):
            async with trickle.JsonSubscriber(url, self._http) as subscriber:
                async for message in subscriber:
                    running.control.append(ControlMessage(time.monotonic(), message))

    async def _events(self, url: str, every: float) -> None:
        publisher = trickle.JsonPublisher(url, self._http)
        try:
            while True:
                await publisher.send({"queue_event_type": "ai_stream_status", "event": {"type": "status"}})
                await asyncio.sleep(every)
        except TrickleError:
            pass
        finally:
            await publisher.close(delete=False)

    async def _output(self, url: str, every: float) -> None:
        publisher = trickle.Publisher(url, "video/mp2t", self._http)
        try:
            while True:
                await publisher.write_segment(b"\x47" * 188 * 8)
                await asyncio.sleep(every)
        except TrickleError:
            pass
        finally:
            await publisher.close(delete=False)

    async def _close_later(self, url: str, after: float) -> None:
        await asyncio.sleep(after)
        assert self._http is not None
        async with self._http.delete(url) as resp:
            await resp.read()

    async def _data(self, url: str, lines: tuple[str, ...]) -> None:
        # The gateway subscribes at the next segment (SEQ_NEXT), after it has the start's reply: what a worker
        # writes before that is not for it. Give it time to be there, even on a loaded machine.
        await asyncio.sleep(2.0)
        publisher = trickle.Publisher(url, JSONL, self._http)
        try:
            await publisher.write_segment("".join(line + "\n" for line in lines).encode())
        finally:
            await publisher.close(delete=False)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
