"""Live Runner routes of the test orchestrator (the registry itself is ``live_runners.py``).

Upstream files, route by route:
- ``POST /runners/heartbeat``, ``POST /runners/{id}/unregister``, ``GET /discovery``,
  ``POST /apps/{route}/session``, ``POST /apps/{route}/session/{sid}/stop``,
  ``/apps/{route}/session/{sid}/app/...`` and ``/apps/{route}/app/...`` (proxies, registered as Go's mux
  patterns ``.../app/{app_path...}``: a bare ``.../app`` is redirected (301) to ``.../app/``; request and reply
  bodies stream through, as ``httputil.ReverseProxy`` does),
  ``POST|DELETE /runner/{route}/session/{sid}/channels``, ``POST /runner/{route}/session/{sid}/stop``:
  go-livepeer ``server/ai_http.go`` (``LiveRunnerHeartbeat`` ... ``proxyLiveRunner``).
- ``POST /registerLiveRunners``: ``server/webserver.go`` ``registerLiveRunnersHandler``, on the CLI port only
  (``cli.py``), without auth; ``-liveRunnerConfig``'s file goes through the same upsert at start.
- background: ``expiryLoop`` (every heartbeat interval), ``healthLoop`` (static runners, checked one after another
  as ``checkStaticRunnerHealth`` does), ``writeO2RLoop``.
- ``GET /_test/live-runners``: test-only view of the registry.

Not implemented: payments (offchain only), ``POST /runner/.../proxy`` and ``-liveRunnerProxyUrl`` proxies,
WebSocket upgrades through the app proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from .channels import TrickleChannels, channel_url
from .live_runners import (
    CHANNEL_NAME,
    MAX_CHANNELS_PER_REQUEST,
    PERSISTENT,
    SINGLE_SHOT,
    Channel,
    LiveRunnerRegistry,
    Released,
    Runner,
    RunnerError,
    derive_secret,
)
from .streams import http_error

log = logging.getLogger(__name__)

KEEPALIVE = b'{"keep":"alive"}'
# Not forwarded by the app proxy (net/http/httputil.ReverseProxy drops hop-by-hop headers).
HOP_HEADERS = frozenset(
    h.lower()
    for h in (
        "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te",
        "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length",
    )
)  # fmt: skip


def runner_error(exc: RunnerError) -> web.Response:
    return http_error(str(exc), exc.status)


class O2RWriter:
    """``writeO2RLoop``: keepalives every interval plus queued session events, one segment per message."""

    def __init__(self, trickle: TrickleChannels, channel: str, interval: float) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=32)
        self.task = asyncio.create_task(self._run(trickle, channel, interval))

    async def _run(self, trickle: TrickleChannels, channel: str, interval: float) -> None:
        while True:
            # asyncio.timeout, not wait_for: on 3.11 a cancel racing wait_for's own timeout can be lost.
            try:
                async with asyncio.timeout(interval):
                    message = await self.queue.get()
            except TimeoutError:
                message = KEEPALIVE
            if not await trickle.publish(channel, message):
                return  # channel closed: StreamNotFoundErr ends the loop upstream too

    def send(self, event: str, session_id: str) -> None:
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        with contextlib.suppress(asyncio.QueueFull):  # upstream logs "write queue is full" and drops it
            self.queue.put_nowait(json.dumps({"event": event, "session": session_id, "timestamp": stamp}).encode())

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


class LiveRunnerRoutes:
    def __init__(
        self,
        registry: LiveRunnerRegistry,
        http: aiohttp.ClientSession,
        trickle: TrickleChannels | None,
        public_trickle_base: str | None,
        service_url: Callable[[], str],
        runner_facing_url: Callable[[], str],
        health_interval: float = 5.0,
        health_timeout: float = 3.0,
        o2r_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.http = http
        self.trickle = trickle
        self.public_trickle_base = public_trickle_base or (trickle.base_url if trickle else None)
        self.service_url = service_url
        self.runner_facing_url = runner_facing_url
        self.health_interval = health_interval
        self.health_timeout = health_timeout
        self.o2r_interval = o2r_interval
        self.clock = clock
        self.o2r: dict[str, O2RWriter] = {}  # by runner id
        self._tasks: list[asyncio.Task[None]] = []

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/runners/heartbeat", self.heartbeat)
        r.add_post("/runners/{runner_id}/unregister", self.unregister)
        r.add_get("/discovery", self.discovery)
        r.add_post("/apps/{route}/session", self.reserve)
        r.add_post("/apps/{route}/session/{session_id}/stop", self.client_stop)
        r.add_route("*", "/apps/{route}/session/{session_id}/app", redirect_to_subtree)
        r.add_route("*", "/apps/{route}/session/{session_id}/app/{path:.*}", self.proxy_session)
        r.add_route("*", "/apps/{route}/app", redirect_to_subtree)
        r.add_route("*", "/apps/{route}/app/{path:.*}", self.proxy_single_shot)
        r.add_post("/runner/{route}/session/{session_id}/channels", self.create_channels)
        r.add_delete("/runner/{route}/session/{session_id}/channels", self.delete_channels)
        r.add_post("/runner/{route}/session/{session_id}/stop", self.runner_stop)
        r.add_get("/_test/live-runners", self.test_live_runners)

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._every(self.registry.heartbeat_interval, self._sweep)),
            asyncio.create_task(self._every(self.health_interval, self.check_static_health)),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self.o2r.values():
            await writer.close()

    async def _every(self, interval: float, action: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await action()
            except Exception:
                log.exception("live runner background task failed")

    async def _sweep(self) -> None:
        await self._cleanup(self.registry.sweep(self.clock()))

    async def check_static_health(self) -> None:
        """``checkStaticRunnerHealth``: one runner after another, each an exact status code match within the
        timeout, else unavailable (a slow or dead runner delays the checks of those after it)."""
        for runner in self.registry.static_runners():
            healthy = await self._healthy(runner.health_url, runner.healthy_status_code)
            await self._cleanup(self.registry.set_static_health(runner, healthy))

    async def _healthy(self, url: str, code: int) -> bool:
        try:
            timeout = aiohttp.ClientTimeout(total=self.health_timeout)
            async with self.http.get(url, timeout=timeout, allow_redirects=True) as resp:
                return resp.status == code
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def _cleanup(self, released: Released) -> None:
        for runner, event, session_id in released.events:
            writer = self.o2r.get(runner.runner_id)
            if writer is not None and self.registry.runners.get(runner.route) is runner:
                writer.send(event, session_id)
        for runner_id in [
            rid for rid in self.o2r if not any(r.runner_id == rid for r in self.registry.runners.values())
        ]:
            await self.o2r.pop(runner_id).close()
        if self.trickle is not None:
            await asyncio.gather(*(self.trickle.delete(name) for name in released.channels))

    # -- runner registration -----------------------------------------------------------------------------

    async def heartbeat(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return http_error(str(exc), 400)
        try:
            runner, created = self.registry.heartbeat(body, request.headers.get("Authorization", ""), self.clock())
        except RunnerError as exc:
            return runner_error(exc)
        if created:
            log.info("live runner registered runner_id=%s app=%s", runner.runner_id, runner.fields.get("app"))
            await self._open_o2r(runner)
        return web.json_response(self.registry.heartbeat_reply(runner, created, self.runner_facing_url()))

    async def _open_o2r(self, runner: Runner) -> None:
        if self.trickle is None:
            return
        name = f"{runner.runner_id}-{derive_secret(runner.seed, 'trickle:o2r')[:16]}-o2r"
        try:
            url = await self.trickle.create(name, "application/json")
        except aiohttp.ClientError as exc:
            log.warning("could not create the o2r channel: %r", exc)
            return
        runner.o2r = Channel("o2r", name, url, "", "application/json")
        self.o2r[runner.runner_id] = O2RWriter(self.trickle, name, self.o2r_interval)

    async def unregister(self, request: web.Request) -> web.Response:
        try:
            released = self.registry.unregister(
                request.match_info["runner_id"], request.headers.get("Authorization", ""), self.clock()
            )
        except RunnerError as exc:
            return runner_error(exc)
        await self._cleanup(released)
        return web.Response(status=204)

    async def register_static(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return http_error("Method not allowed", 405)
        try:
            registrations = await self.register_static_json(await request.read())
        except RunnerError as exc:
            return runner_error(exc)
        return web.json_response({"runners": registrations})

    async def register_static_json(self, data: bytes) -> list[dict[str, Any]]:
        """``RegisterStaticRunners``: normalize the document, then entry by entry validate it and check its
        health (sequential, before the answer); a bad entry fails the batch with 400 and nothing is registered,
        even though the entries before it were checked. Then upsert by label."""
        try:
            raw = self.registry.normalize_static(json.loads(data))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunnerError(400, str(exc)) from None
        entries: list[dict[str, Any]] = []
        healthy: list[bool] = []
        labels: set[str] = set()
        for i, item in enumerate(raw):
            entries.append(self.registry.build_static(i, item, labels))
            healthy.append(await self._healthy(entries[-1]["health_url"], entries[-1]["code"]))
        registrations, released = self.registry.upsert_static(entries, healthy, self.clock())
        await self._cleanup(released)
        return registrations

    async def discovery(self, request: web.Request) -> web.Response:
        return web.json_response(self.registry.discovery(self.service_url(), self.clock()))

    async def test_live_runners(self, request: web.Request) -> web.Response:
        return web.json_response(self.registry.to_json(self.clock()))

    # -- sessions ----------------------------------------------------------------------------------------

    async def reserve(self, request: web.Request) -> web.Response:
        route = request.match_info["route"]
        try:
            runner = self.registry.ready_runner(route, self.clock())
            if runner.mode != PERSISTENT:
                return http_error("only persistent runners have sessions", 400)
            runner, session = self.registry.reserve(route, self.clock())
        except RunnerError as exc:
            return runner_error(exc)
        if runner.runner_id in self.o2r:
            self.o2r[runner.runner_id].send("reserved", session.session_id)
        control = f"{self.service_url()}/apps/{route}/session/{session.session_id}"
        log.info("live runner session reserved runner=%s session=%s", runner.runner_id, session.session_id)
        return web.json_response(
            {"session_id": session.session_id, "app_url": control + "/app", "control_url": control}
        )

    async def client_stop(self, request: web.Request) -> web.Response:
        try:
            released = self.registry.release(
                request.match_info["route"], request.match_info["session_id"], self.clock()
            )
        except RunnerError as exc:
            return runner_error(exc)
        await self._cleanup(released)
        return web.Response(status=204)

    async def runner_stop(self, request: web.Request) -> web.Response:
        route, session_id = request.match_info["route"], request.match_info["session_id"]
        try:
            self.registry.check_session_token(
                route, session_id, request.headers.get("Livepeer-Session-Token", ""), self.clock()
            )
            released = self.registry.release(route, session_id, self.clock())
        except RunnerError as exc:
            return runner_error(exc)
        await self._cleanup(released)
        return web.Response(status=204)

    async def _channel_request(self, request: web.Request) -> tuple[Runner, Any, list[Any]] | web.Response:
        """Token check, then the body's ``channels`` list (1..25 entries), as both channel handlers start."""
        route, session_id = request.match_info["route"], request.match_info["session_id"]
        try:
            runner, session = self.registry.check_session_token(
                route, session_id, request.headers.get("Livepeer-Session-Token", ""), self.clock()
            )
        except RunnerError as exc:
            return runner_error(exc)
        try:
            body = json.loads(await request.read())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return http_error(str(exc), 400)
        channels = body.get("channels") if isinstance(body, dict) else None
        if not channels or not isinstance(channels, list):
            return http_error("channels is required", 400)
        if len(channels) > MAX_CHANNELS_PER_REQUEST:
            return http_error(f"channels cannot contain more than {MAX_CHANNELS_PER_REQUEST} entries", 400)
        return runner, session, channels

    async def create_channels(self, request: web.Request) -> web.Response:
        parsed = await self._channel_request(request)
        if isinstance(parsed, web.Response):
            return parsed
        _, session, wanted = parsed
        out = []
        for item in wanted:
            item = item if isinstance(item, dict) else {}
            try:
                name = normalize_channel_name(str(item.get("name") or ""))
            except RunnerError as exc:
                return runner_error(exc)
            if self.trickle is None or self.public_trickle_base is None:
                return http_error("trickle server is required", 500)
            channel = session.channels.get(name)
            if channel is None:  # existing names are idempotent
                channel_name = f"{session.session_id}-{name}"
                mime = str(item.get("mime_type") or "").strip() or "application/octet-stream"
                internal = await self.trickle.create(channel_name, mime)
                channel = Channel(
                    name, channel_name, channel_url(self.public_trickle_base, channel_name), internal, mime
                )
                session.channels[name] = channel
            out.append(channel.to_json())
        return web.json_response({"channels": out})

    async def delete_channels(self, request: web.Request) -> web.Response:
        parsed = await self._channel_request(request)
        if isinstance(parsed, web.Response):
            return parsed
        _, session, names = parsed
        for raw in names:
            try:
                name = normalize_channel_name(str(raw))
            except RunnerError as exc:
                return runner_error(exc)
            channel = session.channels.pop(name, None)
            if channel is None:
                return http_error("trickle channel not found", 404)
            if self.trickle is not None:
                await self.trickle.delete(channel.channel_name)
        return web.json_response({"deleted": names})

    # -- app proxy ---------------------------------------------------------------------------------------

    async def proxy_session(self, request: web.Request) -> web.StreamResponse:
        route, session_id = request.match_info["route"], request.match_info["session_id"]
        try:
            runner, _ = self.registry.session(route, session_id, self.clock())
        except RunnerError as exc:
            return runner_error(exc)
        return await self._proxy(request, runner, route, session_id)

    async def proxy_single_shot(self, request: web.Request) -> web.StreamResponse:
        """``ProxyLiveRunnerSingleShot``: a session lives for one proxied request."""
        route = request.match_info["route"]
        try:
            runner = self.registry.ready_runner(route, self.clock())
            if runner.mode != SINGLE_SHOT:
                return http_error("runner is not single-shot", 400)
            runner, session = self.registry.reserve(route, self.clock())
        except RunnerError as exc:
            return runner_error(exc)
        try:
            return await self._proxy(request, runner, route, session.session_id)
        finally:
            with contextlib.suppress(RunnerError):
                await self._cleanup(self.registry.release(route, session.session_id, self.clock()))

    async def _proxy(self, request: web.Request, runner: Runner, route: str, session_id: str) -> web.StreamResponse:
        """``proxyLiveRunner``: method, query, headers and body go to ``runner_url + path``, plus four headers."""
        target = runner.fields["runner_url"].rstrip("/") + "/" + request.match_info["path"]
        if request.query_string:
            target += "?" + request.query_string
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        headers.update(
            {
                "Livepeer-Runner-Route": route,
                "Livepeer-Session-Id": session_id,
                "Livepeer-Session-Token": runner.session_token(session_id),
                "Livepeer-Session-Control": f"{self.runner_facing_url()}/runner/{route}/session/{session_id}",
            }
        )
        if request.content_length is not None:
            headers["Content-Length"] = str(request.content_length)  # kept, as ReverseProxy keeps ContentLength
        body = request.content.iter_any() if request.can_read_body else None  # streamed as it arrives
        response: web.StreamResponse | None = None
        try:
            # The session's auto_decompress=False passes compressed bodies through untouched.
            async with self.http.request(
                request.method, target, headers=headers, data=body, allow_redirects=False
            ) as upstream:
                response = web.StreamResponse(status=upstream.status)
                for key, value in upstream.headers.items():
                    if key.lower() not in HOP_HEADERS:
                        response.headers.add(key, value)
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():  # SSE and other streams pass as they come
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (aiohttp.ClientError, TimeoutError) as exc:
            if response is not None and response.prepared:
                return response  # the runner went away mid-stream: the client sees the body end
            return http_error(str(exc), 502)


async def redirect_to_subtree(request: web.Request) -> web.StreamResponse:
    """Go's ``ServeMux`` for a ``.../{name...}`` pattern: the subtree root without its slash gets a 301 to it
    (any method; the query is kept). A POST is then re-sent as a GET by most clients, Go's included."""
    location = request.path + "/" + ("?" + request.query_string if request.query_string else "")
    return web.Response(status=301, headers={"Location": location})


def normalize_channel_name(name: str) -> str:
    """``normalizeTrickleChannelName``: trimmed, ``/`` -> ``-``, then ``[A-Za-z0-9_-]+``."""
    name = name.strip().replace("/", "-")
    if not name:
        raise RunnerError(400, "trickle channel name is required")
    if not CHANNEL_NAME.match(name):
        raise RunnerError(400, "trickle channel name may only contain alphanumerics, underscores, or hyphens")
    return name
