"""Prometheus metrics of the router, on a registry of its own (several routers can live in one test process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class RouterMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.pods = Gauge(
            "byoc_router_pods", "Worker pods known, by whether they take new streams", ["accepting"], registry=r
        )
        self.slots = Gauge("byoc_router_slots", "Stream slots on pods that take new streams", registry=r)
        self.slots_free = Gauge("byoc_router_slots_free", "Free stream slots, as last polled", registry=r)
        self.streams = Gauge("byoc_router_streams", "Streams pinned to a pod", registry=r)
        self.starts = Counter("byoc_router_starts", "Stream starts by result", ["result"], registry=r)
        self.attempts = Counter(
            "byoc_router_start_attempts", "Starts forwarded to a pod, by the pod's answer", ["outcome"], registry=r
        )
        self.forwards = Counter(
            "byoc_router_forwards", "Pinned requests forwarded, by route and outcome", ["route", "outcome"], registry=r
        )
        self.polls = Counter("byoc_router_pod_polls", "Pod status polls by outcome", ["outcome"], registry=r)
        self.start_seconds = Histogram(
            "byoc_router_start_seconds",
            "Time to answer a stream start",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
