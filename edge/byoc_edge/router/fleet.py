"""What the router knows about its pods: which there are, their load and the streams each runs (as pins), kept
fresh by polling; and the router's own ``/stream/status`` and ``/health`` built from that view.

The pods are the source of truth (see ``streams.py`` for why): this is a cache, refreshed from the pod source
every ``refresh_interval`` and from each pod's ``/stream/status`` every ``status_interval`` and before each start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from ..bearer import BearerToken
from .client import PodClient, PodUnreachable
from .config import RouterConfig
from .load import IDLE, LOADING, OK
from .metrics import RouterMetrics
from .pins import PinTable
from .placement import Pod, totals
from .pods import PodSource, PodSourceError

log = logging.getLogger(__name__)


class Fleet:
    """The pods behind one router and the streams pinned to them."""

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
