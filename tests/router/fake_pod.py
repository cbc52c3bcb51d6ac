"""A fake worker pod: the worker REST contract (protocols.md section 1) over real HTTP, without media.

Follows pytrickle ``pytrickle/server.py`` (``StreamServer``: routes, 503 "Pipeline is still in use" when its one
slot is taken, 503 while loading, 400 "No active stream", ``/health`` LOADING/IDLE/OK/ERROR, ``/stream/status``
with ``current_params.gateway_request_id``) and, with ``flavour="runtime"``, our runtime's
``byoc_runtime/api/server.py`` (several slots; ``/stream/status`` lists ``sessions`` with ``stream_id`` and
``gateway_request_id``; ``/health`` adds ``active_streams``/``capacity``/``available``; a start repeating a running
``gateway_request_id`` gets that stream back). Every request is recorded for assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

Flavour = Literal["pytrickle", "runtime"]


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeStream:
    stream_id: str
    gateway_request_id: str
    request: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)


class FakePod:
    def __init__(
        self,
        capacity: int = 1,
        flavour: Flavour = "runtime",
        token: str | None = None,
        loading: bool = False,
        start_delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.host = host
        self._site_port = port
        self.capacity = capacity
        self.flavour = flavour
        self.token = token
        self.loading = loading
        self.error = False
        self.start_delay = start_delay
        self.health_status_code = 200
        self.health_delay = 0.0
        self.streams: dict[str, FakeStream] = {}  # by gateway_request_id
        self.requests: list[Recorded] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, **options: Any) -> AsyncIterator[FakePod]:
        pod = cls(**options)
        await pod.serve()
        try:
            yield pod
        finally:
            await pod.close()

    async def serve(self, port: int = 0) -> None:
        app = web.Application(middlewares=[self._record])
        for prefix in ("", "/api"):
            app.router.add_post(f"{prefix}/stream/start", self.start_stream)
            app.router.add_post(f"{prefix}/live-video-to-video", self.start_stream)
            app.router.add_post(f"{prefix}/stream/stop", self.stop_stream)
            app.router.add_post(f"{prefix}/stream/params", self.update_params)
            app.router.add_get(f"{prefix}/stream/status", self.status)
            app.router.add_get(f"{prefix}/health", self.health)
            app.router.add_get(f"{prefix}/version", self.version)
        app.router.add_route("*", "/echo{path:.*}", self.echo)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, port or self._site_port)
        await site.start()
        self._site_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{self.host}:{self._site_port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def restart(self) -> None:
        """Stop and serve again on the same port (streams kept: a pod the router lost contact with)."""
        await self.close()
        await self.serve(self._site_port)

    # -- helpers -----------------------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Recorded(request.method, request.path, request.query_string, dict(request.headers), body))
        stream_route = "/stream/" in request.path or request.path.endswith("live-video-to-video")
        if self.token and stream_route and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"status": "error", "message": "missing or invalid bearer token"}, status=401)
        return await handler(request)

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith(path)]

    @property
    def health_state(self) -> str:
        if self.error:
            return "ERROR"
        if self.streams:
            return "OK"
        return "LOADING" if self.loading else "IDLE"

    def _find(self, key: str | None) -> FakeStream | None:
        if key:
            return self.streams.get(key) or next((s for s in self.streams.values() if s.stream_id == key), None)
        return next(iter(self.streams.values())) if len(self.streams) == 1 else None

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        return web.json_response({"status": "error", "message": message}, status=status)

    # -- routes ------------------------------------------------------------------------------------------

    async def start_stream(self, request: web.Request) -> web.Response:
        if not request.content_type.startswith("application/json"):
            return self._error(400, "Content-Type must be application/json")
        try:
            body = await request.json()
        except (json.JSONDecodeError, RecursionError):  # as the runtime answers (review L2)
            return self._error(400, "invalid JSON")
        if not isinstance(body, dict) or not body.get("gateway_request_id"):
            return self._error(400, "gateway_request_id is required")
        if self.start_delay:
            await asyncio.sleep(self.start_delay)
        if self.loading:
            return self._error(503, "Pipeline is still initializing. Please wait for IDLE status.")
        request_id = body["gateway_request_id"]
        if self.flavour == "runtime" and request_id in self.streams:
            return web.json_response({"status": "success", "message": "Stream already running"})
        if len(self.streams) >= self.capacity:
            return self._error(503, "Pipeline is still in use")
        stream_id = request.headers.get("X-Stream-Id") or request_id
        self.streams[request_id] = FakeStream(stream_id, request_id, body, dict(body.get("params") or {}))
        return web.json_response(
            {"status": "success", "message": "Stream started successfully", "request_id": request_id}
        )

    async def stop_stream(self, request: web.Request) -> web.Response:
        if not self.streams:
            return self._error(400, "No active stream to stop")
        stream = self._find(request.headers.get("X-Stream-Id"))
        if stream is None:
            return self._error(404, "no such stream")
        del self.streams[stream.gateway_request_id]
        return web.json_response({"status": "success", "message": "Stream stopped successfully"})

    async def update_params(self, request: web.Request) -> web.Response:
        if not self.streams:
            return self._error(400, "No active stream")
        stream = self._find(request.headers.get("X-Stream-Id"))
        if stream is None:
            return self._error(404, "no such stream")
        stream.params.update(await request.json())
        return web.json_response({"status": "success", "message": "Parameters updated successfully"})

    async def status(self, request: web.Request) -> web.Response:
        key = request.headers.get("X-Stream-Id") or request.query.get("stream_id")
        if self.flavour == "pytrickle":
            first = next(iter(self.streams.values()), None)
            data: dict[str, Any] = {
                "status": self.health_state,
                "state": self.health_state,
                "pipeline_ready": not self.loading,
                "active_streams": len(self.streams),
                "startup_complete": not self.loading,
                "client_active": first is not None,
            }
            if first is not None:
                data["client_running"] = True
                data["current_params"] = {"gateway_request_id": first.gateway_request_id}
            return web.json_response(data)
        if key:
            stream = self._find(key)
            if stream is None:
                return self._error(404, f"no stream {key!r}")
            return web.json_response(self._session(stream))
        return web.json_response(
            {
                "state": self.health_state,
                "pipeline_ready": not self.loading,
                "active_streams": len(self.streams),
                "capacity": self.capacity,
                "sessions": [self._session(s) for s in self.streams.values()],
            }
        )

    @staticmethod
    def _session(stream: FakeStream) -> dict[str, Any]:
        return {"stream_id": stream.stream_id, "gateway_request_id": stream.gateway_request_id, "params": stream.params}

    async def health(self, request: web.Request) -> web.Response:
        if self.health_delay:
            await asyncio.sleep(self.health_delay)
        data: dict[str, Any] = {"status": self.health_state}
        if self.flavour == "runtime":
            data.update(
                active_streams=len(self.streams),
                capacity=self.capacity,
                available=max(0, self.capacity - len(self.streams)),
            )
        return web.json_response(data, status=self.health_status_code)

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"pipeline": "byoc", "model_id": "fake", "version": "0.0.0"})

    async def echo(self, request: web.Request) -> web.Response:
        """Any method under /echo: what arrived (for proxy tests)."""
        body = await request.read()
        return web.json_response(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query_string,
                "headers": dict(request.headers),
                "body": body.decode(errors="replace"),
            }
        )
