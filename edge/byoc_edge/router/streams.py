"""The router's stream calls: starts placed on pods, and the calls pinned to the pod that runs a stream.

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
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..rest import STREAM_ID_HEADER, HttpError, error_reply, is_json, json_object, stream_key
from .client import PodUnreachable, Reply
from .config import RouterConfig
from .fleet import Fleet
from .load import OK, PodLoad
from .metrics import RouterMetrics
from .placement import Pod, start_order, totals
from .pods import PodSource

log = logging.getLogger(__name__)


def as_response(reply: Reply) -> web.Response:
    return web.Response(status=reply.status, body=reply.body, headers={"Content-Type": reply.content_type})


def body_fields(body: bytes) -> dict[str, Any]:
    """The body as a JSON object for finding the stream key, or {}: the pod, not the router, judges the body."""
    try:
        return json_object(body)
    except HttpError:
        return {}


@dataclass(frozen=True)
class Refusal:
    """One pod that did not take a start: its HTTP status (None: unreachable) and its ``reason``, if any."""

    pod: str
    status: int | None
    reason: str | None = None

    def outward(self) -> dict[str, Any]:
        """What the caller sees: no pod address, no error text (go-livepeer passes it on to the gateway)."""
        return {"status": self.status, "reason": self.reason if self.status is not None else "unreachable"}


def pod_reason(reply: Reply) -> str | None:
    """A pod's ``reason`` token (ours sends one), kept only when it is a short identifier."""
    data = reply.json()
    reason = data.get("reason") if isinstance(data, dict) else None
    return reason if isinstance(reason, str) and reason.isidentifier() and len(reason) <= 32 else None


class Router(Fleet):
    """The fleet's view plus stream calls: places starts, forwards pinned calls, one call per stream at a time."""

    def __init__(
        self,
        config: RouterConfig,
        source: PodSource | None = None,
        metrics: RouterMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(config, source, metrics, clock)
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

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
        data = body_fields(body)
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

        refusals: list[Refusal] = []
        for url in start_order(list(self.pods.values()), self.config.sessions_per_pod):
            pod = self.pods.get(url)
            if pod is None:
                continue
            try:
                reply = await self._forward_start(pod, request, body)
            except PodUnreachable as exc:
                if exc.sent:  # it may have started the stream: trying elsewhere could run it twice
                    return self._sent_failure(exc, url)
                log.info("pod unreachable for a start", extra={"pod": url, "error": str(exc)})
                refusals.append(Refusal(url, None))
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
                refusals.append(Refusal(url, reply.status, pod_reason(reply)))
                continue
            self.metrics.starts.labels("rejected").inc()
            return as_response(reply)  # 4xx: the request itself is wrong, every pod would say the same

        self.metrics.starts.labels("refused").inc()
        return self._no_slot(key, refusals)

    def _sent_failure(self, exc: PodUnreachable, url: str) -> web.Response:
        self.metrics.starts.labels("error").inc()
        log.warning("start failed after it was sent", extra={"pod": url, "error": str(exc)})
        if exc.timed_out:
            return error_reply(504, "worker pod timed out after the start was sent", "pod_timeout")
        return error_reply(502, "worker pod failed after the start was sent", "pod_failed")

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

    def _no_slot(self, key: str, refusals: list[Refusal]) -> web.Response:
        pods = [p for p in self.pods.values() if p.takes_streams]
        slots, streams = totals(pods, self.config.sessions_per_pod)
        if not pods:
            reason, message = "no_pods", "no worker pods are known yet"
        elif refusals and all(r.status is None for r in refusals):
            reason, message = "unreachable", f"none of the {len(pods)} worker pods could be reached"
        else:
            reason, message = "capacity", f"every slot is taken ({streams}/{slots} streams on {len(pods)} pods)"
        log.warning(
            "stream refused",
            extra={"stream_id": key, "reason": reason, "refusals": [(r.pod, r.status, r.reason) for r in refusals]},
        )
        outward = [r.outward() for r in refusals]
        return error_reply(
            503, message, reason, capacity=slots, active_streams=streams, pods=len(pods), refusals=outward
        )

    # -- pinned stream calls -----------------------------------------------------------------------------

    async def pinned_call(self, request: web.Request, route: str) -> web.Response:
        body = await request.read()
        key = stream_key(request, body_fields(body) if is_json(request) else {})
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
                log.warning("pod unreachable", extra={"stream_id": key, "pod": url, "route": route, "error": str(exc)})
                self._failed(pod)
                return error_reply(502, "worker pod unreachable", "pod_unreachable")
            pod.failures = 0
            self.metrics.forwards.labels(route, str(reply.status)).inc()
            if route == "stop" and (reply.status < 300 or reply.status in (400, 404)):
                self.pins.unpin(key)  # stopped, or the pod had no such stream: either way not there now
                if pod.load is not None:
                    pod.load = pod.load.with_stopped(key)
                self._update_gauges()
                log.info("stream stopped", extra={"stream_id": key, "pod": url, "status": reply.status})
            return as_response(reply)

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
