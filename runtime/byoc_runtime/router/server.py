"""The router's HTTP side: stream starts placed on pods, pinned stream calls, and its own health and metrics.

Why the pods, not the router, are the source of truth
-----------------------------------------------------
Every pod refuses a start beyond its capacity with 503 (our runtime's ``SessionTable``; PyTrickle's single
slot: "Pipeline is still in use"), and every pod can say which streams it runs (``/stream/status``). So the
router keeps only a cache, and:

- several replicas never double-book a slot: two replicas may both believe a pod has room and both forward a
  start, but the pod takes one and answers the other 503, and that replica tries the next pod. The price of a
  stale cache is one extra hop, never an oversubscribed GPU. Each start also re-polls the pods first, so the
  cache is fresh when it matters, and that same poll finds a stream another replica placed: a repeated start
  or a ``/stream/stop`` arriving at a replica that did not see the start still reaches the right pod.
- a restarted router loses nothing: at start-up it polls every pod and pins the streams each one reports, so
  ``/stream/params`` and ``/stream/stop`` of running streams go where they did before.
- a stream a pod ends by itself (input gone) disappears from that pod's status and its pin is dropped on the
  next poll, which frees the slot in the router's view too.

What the router does itself: choose the order in which pods are tried (most free slots first), hold a
per-stream lock so one replica never races itself on a stream id, and count starts it has in flight so
parallel starts spread instead of all choosing the same pod.

A start that failed to connect is safe to try on the next pod. A start that timed out or broke after it was
sent may have started the stream, so the router answers 504/502 instead of risking a second copy elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from .. import __version__
from ..bearer import BearerToken
from .client import PodClient, PodUnreachable, Reply
from .config import RouterConfig
from .load import IDLE, LOADING, OK, PodLoad
from .metrics import CONTENT_TYPE, RouterMetrics
from .pins import PinTable
from .placement import Pod, start_order, totals
from .pods import PodSource, PodSourceError

log = logging.getLogger(__name__)

STREAM_ID_HEADER = "X-Stream-Id"
PREFIXES = ("", "/api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_reply(status: int, message: str, reason: str, **extra: Any) -> web.Response:
    return web.json_response({"status": "error", "message": message, "reason": reason, **extra}, status=status)


def as_response(reply: Reply) -> web.Response:
    return web.Response(status=reply.status, body=reply.body, headers={"Content-Type": reply.content_type})


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or {} (the pod, not the router, judges the body)."""
    try:
        data = json.loads(body) if body else {}
    except (ValueError, UnicodeDecodeError, RecursionError):  # too deep: the pod answers 400
        return {}
    return data if isinstance(data, dict) else {}


def stream_key(request: web.Request, body: dict[str, Any]) -> str | None:
    """The stream a call is about: ``X-Stream-Id`` (go-livepeer sends it on every call), else the body's
    ``gateway_request_id``/``stream_id``, else ``?stream_id=``."""
    for value in (
        request.headers.get(STREAM_ID_HEADER),
        body.get("gateway_request_id"),
        body.get("stream_id"),
        request.query.get("stream_id"),
    ):
        if isinstance(value, str) and value:
            return value
    return None


class Router:
    def __init__(
        self,
        config: RouterConfig,
        source: PodSource | None = None,
        metrics: RouterMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.source = source or config.pod_source()
        self.metrics = metrics or RouterMetrics()
        self.clock = clock
        self.pods: dict[str, Pod] = {}
        self.pins = PinTable()
        self.token = BearerToken(config.token, config.token_file)
        self._http: aiohttp.ClientSession | None = None
        self._client: PodClient | None = None
        self._poll: asyncio.Task[None] | None = None
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        self._loops: list[asyncio.Task[None]] = []

    @property
    def client(self) -> PodClient:
        assert self._client is not None, "router not started"
        return self._client

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Learn the pods and the streams they already run before taking requests (a restart loses nothing)."""
        # A fresh connection per call: a pooled one a restarted pod closed would fail a POST after "sending" it.
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        self._client = PodClient(self._http, self.token, self.config.status_timeout)
        await self.refresh_pods()
        await self.poll_pods()
        log.info(
            "router ready",
            extra={"source": self.source.describe(), "pods": len(self.pods), "streams": len(self.pins)},
        )
        self._loops = [
            asyncio.create_task(self._every(self.config.refresh_interval, self.refresh_pods)),
            asyncio.create_task(self._every(self.config.status_interval, self.poll_pods)),
        ]

    async def close(self) -> None:
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    async def _every(self, interval: float, action: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await action()
            except Exception:
                log.exception("router background task failed")

    # -- pods --------------------------------------------------------------------------------------------

    async def refresh_pods(self) -> None:
        try:
            urls = await self.source.discover()
        except PodSourceError as exc:
            log.warning("pod source unreadable, keeping %d known pods: %s", len(self.pods), exc)
            return
        self.apply_pods(urls)

    def apply_pods(self, urls: list[str]) -> None:
        """New pods join; a pod gone from the source stops taking streams but keeps the ones it runs."""
        wanted = set(urls)
        for url in urls:
            pod = self.pods.get(url)
            if pod is None:
                self.pods[url] = Pod(url)
                log.info("pod joined", extra={"pod": url})
            elif not pod.accepting:
                pod.accepting = True
                log.info("pod back", extra={"pod": url})
        per_pod = self.pins.per_pod()
        for url, pod in list(self.pods.items()):
            if url in wanted:
                continue
            if pod.accepting:
                pod.accepting = False
                log.info("pod left the source", extra={"pod": url, "streams": per_pod[url]})
            if not per_pod[url]:
                del self.pods[url]
        self._update_gauges()

    async def poll_pods(self) -> None:
        """Poll every pod once; callers arriving while a poll runs share it."""
        if self._poll is None or self._poll.done():
            self._poll = asyncio.create_task(self._poll_pods())
        await asyncio.shield(self._poll)

    async def _poll_pods(self) -> None:
        started = self.clock()
        await asyncio.gather(*(self._poll_pod(pod, started) for pod in list(self.pods.values())))
        self._update_gauges()

    async def _poll_pod(self, pod: Pod, started: float) -> None:
        try:
            load = await self.client.poll(pod.url)
        except PodUnreachable as exc:
            self.metrics.polls.labels("unreachable").inc()
            if pod.failures == 0:
                log.warning("pod unreachable", extra={"pod": pod.url, "error": str(exc)})
            self._failed(pod)
            return
        self.metrics.polls.labels("ok").inc()
        if self.pods.get(pod.url) is not pod:
            return  # dropped from the pod set while the poll was in flight
        if pod.failures:
            log.info("pod reachable again", extra={"pod": pod.url})
        pod.failures, pod.load, pod.polled_at = 0, load, started
        if load.streams_known:
            added, dropped = self.pins.reconcile(pod.url, load.streams, started)
            if added or dropped:
                log.info("pins learned from pod", extra={"pod": pod.url, "added": added, "dropped": dropped})
        if not pod.accepting and not self.pins.per_pod()[pod.url]:
            self.pods.pop(pod.url, None)

    def _failed(self, pod: Pod) -> None:
        pod.failures += 1
        pod.load = None  # unknown, not full: a later start may still try it
        if not pod.accepting:  # gone from the source and not answering: its streams are gone with it
            self.pins.unpin_pod(pod.url)
            self.pods.pop(pod.url, None)

    def _update_gauges(self) -> None:
        pods = list(self.pods.values())
        accepting = sum(p.takes_streams for p in pods)
        self.metrics.pods.labels("true").set(accepting)
        self.metrics.pods.labels("false").set(len(pods) - accepting)
        slots, _ = totals(pods, self.config.sessions_per_pod)
        self.metrics.slots.set(slots)
        self.metrics.slots_free.set(sum(p.free(self.config.sessions_per_pod) or 0 for p in pods if p.accepting))
        self.metrics.streams.set(len(self.pins))

    @contextlib.asynccontextmanager
    async def _serialized(self, key: str) -> AsyncIterator[None]:
        """One call at a time per stream id in this replica (a retried start must not race the first)."""
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[key]

    # -- stream start ------------------------------------------------------------------------------------

    async def start_stream(self, request: web.Request) -> web.Response:
        began = self.clock()
        body = await request.read()
        data = json_object(body)
        key = stream_key(request, data)
        if key is None:
            self.metrics.starts.labels("bad_request").inc()
            return error_reply(400, f"{STREAM_ID_HEADER} header or gateway_request_id is required", "no_stream_id")
        keys = frozenset(k for k in (key, data.get("gateway_request_id")) if isinstance(k, str) and k)
        async with self._serialized(key):
            await self.poll_pods()  # fresh loads, and whichever pod already runs this stream
            reply = await self._place(request, key, keys, body)
        self.metrics.start_seconds.observe(self.clock() - began)
        return reply

    async def _place(self, request: web.Request, key: str, keys: frozenset[str], body: bytes) -> web.Response:
        pinned = self.pins.get(key)
        if pinned is not None and pinned in self.pods:
            # A repeated start: the pod that runs the stream answers it (ours returns the running stream).
            try:
                reply = await self._forward_start(self.pods[pinned], request, body)
            except PodUnreachable as exc:
                if exc.sent:
                    return self._sent_failure(exc, pinned)
                self.pins.unpin(key)  # its pod is gone: place the stream afresh
            else:
                if 200 <= reply.status < 300:
                    self.pins.pin(keys | self._keys_of(key), pinned, self.clock())
                self.metrics.starts.labels("repeated").inc()
                return as_response(reply)

        refusals: list[dict[str, Any]] = []
        for url in start_order(list(self.pods.values()), self.config.sessions_per_pod):
            pod = self.pods.get(url)
            if pod is None:
                continue
            try:
                reply = await self._forward_start(pod, request, body)
            except PodUnreachable as exc:
                if exc.sent:  # it may have started the stream: trying elsewhere could run it twice
                    return self._sent_failure(exc, url)
                refusals.append({"pod": url, "error": str(exc)})
                continue
            if 200 <= reply.status < 300:
                self.pins.pin(keys, url, self.clock())
                pod.load = (pod.load or PodLoad(OK, 0, None)).with_started(keys)
                self._update_gauges()
                self.metrics.starts.labels("placed").inc()
                log.info("stream placed", extra={"stream_id": key, "pod": url, "tried": len(refusals) + 1})
                return as_response(reply)
            if reply.status >= 500:  # full (503), loading (503) or broken: the next pod may take it
                if reply.status == 503 and pod.load is not None:
                    pod.load = pod.load.full(self.config.sessions_per_pod)
                message = reply.json()
                refusals.append(
                    {
                        "pod": url,
                        "status": reply.status,
                        "message": message.get("message") if isinstance(message, dict) else None,
                    }
                )
                continue
            self.metrics.starts.labels("rejected").inc()
            return as_response(reply)  # 4xx: the request itself is wrong, every pod would say the same

        self.metrics.starts.labels("refused").inc()
        return self._no_slot(key, refusals)

    def _sent_failure(self, exc: PodUnreachable, url: str) -> web.Response:
        self.metrics.starts.labels("error").inc()
        log.warning("start failed after it was sent", extra={"pod": url, "error": str(exc)})
        if exc.timed_out:
            return error_reply(504, "worker pod timed out after the start was sent", "pod_timeout", pod=url)
        return error_reply(502, f"worker pod failed after the start was sent: {exc}", "pod_failed", pod=url)

    def _keys_of(self, key: str) -> set[str]:
        pin = next((p for p in self.pins if key in p.keys), None)
        return set(pin.keys) if pin else {key}

    async def _forward_start(self, pod: Pod, request: web.Request, body: bytes) -> Reply:
        pod.reserved += 1
        try:
            reply = await self.client.forward(
                pod.url, "POST", request.path_qs, request.headers, body, self.config.start_timeout
            )
        except PodUnreachable:
            self.metrics.attempts.labels("unreachable").inc()
            pod.failures += 1
            pod.load = None
            raise
        finally:
            pod.reserved -= 1
        pod.failures = 0
        outcome = "accepted" if reply.status < 300 else ("full" if reply.status == 503 else "error")
        self.metrics.attempts.labels(outcome).inc()
        return reply

    def _no_slot(self, key: str, refusals: list[dict[str, Any]]) -> web.Response:
        pods = [p for p in self.pods.values() if p.takes_streams]
        slots, streams = totals(pods, self.config.sessions_per_pod)
        if not pods:
            reason, message = "no_pods", "no worker pods are known yet"
        elif refusals and all("error" in r for r in refusals):
            reason, message = "unreachable", f"none of the {len(pods)} worker pods could be reached"
        else:
            reason, message = "capacity", f"every slot is taken ({streams}/{slots} streams on {len(pods)} pods)"
        log.warning("stream refused", extra={"stream_id": key, "reason": reason, "refusals": refusals})
        return error_reply(
            503, message, reason, capacity=slots, active_streams=streams, pods=len(pods), refusals=refusals
        )

    # -- pinned stream calls -----------------------------------------------------------------------------

    async def pinned_call(self, request: web.Request, route: str) -> web.Response:
        body = await request.read()
        key = stream_key(request, json_object(body) if request.content_type == "application/json" else {})
        if key is None:
            only = self.pins.only()
            if route == "status" and only is None:
                return web.json_response(self.status())
            if only is None:
                message = "No active stream" if not len(self.pins) else f"{STREAM_ID_HEADER} header required"
                return error_reply(400, message, "no_stream_id", active_streams=len(self.pins))
            key = next(iter(sorted(only.keys)))
        async with self._serialized(key):
            url = self.pins.get(key)
            if url is None:
                await self.poll_pods()  # maybe another replica placed it, or this one restarted
                url = self.pins.get(key)
            if url is None or url not in self.pods:
                self.metrics.forwards.labels(route, "unknown").inc()
                return error_reply(404, f"no stream {key!r} on any worker pod", "unknown_stream")
            pod = self.pods[url]
            headers = dict(request.headers)
            headers.setdefault(STREAM_ID_HEADER, key)  # a pod with several streams needs to know which
            try:
                reply = await self.client.forward(
                    url, request.method, request.path_qs, headers, body, self.config.request_timeout
                )
            except PodUnreachable as exc:
                self.metrics.forwards.labels(route, "unreachable").inc()
                self._failed(pod)
                return error_reply(502, f"worker pod unreachable: {exc}", "pod_unreachable", pod=url)
            pod.failures = 0
            self.metrics.forwards.labels(route, str(reply.status)).inc()
            if route == "stop" and (reply.status < 300 or reply.status in (400, 404)):
                self.pins.unpin(key)  # stopped, or the pod had no such stream: either way not there now
                if pod.load is not None:
                    pod.load = pod.load.with_stopped(key)
                self._update_gauges()
                log.info("stream stopped", extra={"stream_id": key, "pod": url, "status": reply.status})
            return as_response(reply)

    # -- router's own view -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Shaped like a worker's ``/stream/status`` (so routers can stack), plus per-pod detail."""
        spp = self.config.sessions_per_pod
        pods = list(self.pods.values())
        slots, streams = totals(pods, spp)
        free = sum(p.free(spp) or 0 for p in pods if p.accepting)
        known = [p for p in pods if p.accepting and p.load is not None and p.load.state != LOADING]
        state = LOADING if not known else (OK if self.pins or streams else IDLE)
        return {
            "state": state,
            "pipeline_ready": bool(known),
            "active_streams": max(streams, len(self.pins)),
            "capacity": slots,
            "available": free,
            "sessions": [
                {"stream_id": k, "gateway_request_id": k, "pod": pin.pod}
                for pin in self.pins
                for k in sorted(pin.keys)[:1]
            ],
            "pods": [
                {
                    "url": p.url,
                    "accepting": p.takes_streams,
                    "reachable": p.reachable,
                    "state": p.load.state if p.load else None,
                    "active_streams": p.load.active if p.load else None,
                    "capacity": p.load.slots(spp) if p.load else None,
                    "free": p.free(spp),
                    "streams": sorted(pin_key for pin in self.pins if pin.pod == p.url for pin_key in pin.keys),
                }
                for p in pods
            ],
        }

    def health(self) -> dict[str, Any]:
        status = self.status()
        return {
            "status": status["state"],
            "active_streams": status["active_streams"],
            "capacity": status["capacity"],
            "available": status["available"],
            "pods": sum(1 for p in status["pods"] if p["accepting"]),
        }

    async def pod_info(self, request: web.Request) -> web.Response:
        """``/version``, ``/hardware/*``: informational, so any pod that answers will do."""
        for pod in self.pods.values():
            if pod.accepting and pod.reachable:
                try:
                    reply = await self.client.forward(
                        pod.url, "GET", request.path_qs, request.headers, None, self.config.request_timeout
                    )
                except PodUnreachable:
                    continue
                return as_response(reply)
        return error_reply(503, "no worker pod answers", "no_pods")


# -- HTTP wiring ---------------------------------------------------------------------------------------------

ROUTER_KEY = web.AppKey("router", Router)


def _is_stream_route(path: str) -> bool:
    return "/stream/" in path or path.endswith("/live-video-to-video")


def auth_middleware(token: BearerToken) -> Any:
    """Same rule as the worker: the registered token as ``Bearer`` on stream routes (a 401 makes go-livepeer
    drop the capability, so only a wrong or missing token gets one). The header is forwarded to the pods, which
    check it too."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _is_stream_route(request.path):
            refusal = token.refusal(request.headers.get("Authorization", ""))
            if refusal:
                why = "unauthorized" if refusal.status == 401 else "token_unavailable"
                return error_reply(refusal.status, refusal.message, why)
        return await handler(request)

    return middleware


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_reply(exc.status, exc.reason, "http")
    except Exception:
        log.exception("unhandled error", extra={"method": request.method, "path": request.path})
        return error_reply(500, "internal error", "internal")


def create_app(router: Router) -> web.Application:
    app = web.Application(middlewares=[error_middleware, auth_middleware(router.token)])
    app[ROUTER_KEY] = router

    def pinned(route: str) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await router.pinned_call(request, route)

        return handler

    async def health(request: web.Request) -> web.Response:
        return web.json_response(router.health())

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=router.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def version(request: web.Request) -> web.Response:
        return web.json_response({"router": "byoc-router", "version": __version__})

    for prefix in PREFIXES:
        app.router.add_post(f"{prefix}/stream/start", router.start_stream)
        app.router.add_post(f"{prefix}/live-video-to-video", router.start_stream)
        app.router.add_post(f"{prefix}/stream/params", pinned("params"))
        app.router.add_post(f"{prefix}/stream/stop", pinned("stop"))
        app.router.add_get(f"{prefix}/stream/status", pinned("status"))
        app.router.add_get(f"{prefix}/health", health)
        app.router.add_get(f"{prefix}/version", router.pod_info)
        app.router.add_get(f"{prefix}/app-version", router.pod_info)
        app.router.add_get(f"{prefix}/hardware/info", router.pod_info)
        app.router.add_get(f"{prefix}/hardware/stats", router.pod_info)
    app.router.add_get("/router/version", version)
    app.router.add_get("/metrics", metrics)

    async def on_startup(_: web.Application) -> None:
        await router.start()

    async def on_cleanup(_: web.Application) -> None:
        await router.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
