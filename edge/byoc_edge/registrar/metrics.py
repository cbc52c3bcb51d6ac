"""Prometheus metrics of the registrar, on a registry of its own (several can live in one test process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class RegistrarMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.heartbeats = Counter(
            "byoc_registrar_heartbeats",
            "Heartbeats by orchestrator and outcome (heartbeat, registered, reregistered, failed)",
            ["orchestrator", "outcome"],
            registry=r,
        )
        self.registered = Gauge(
            "byoc_registrar_registered", "1 while the runner holds a registration", ["orchestrator"], registry=r
        )
        self.sessions_held = Gauge(
            "byoc_registrar_sessions_held",
            "Sessions the orchestrator holds for this runner",
            ["orchestrator"],
            registry=r,
        )
        self.worker_ready = Gauge("byoc_registrar_worker_ready", "1 while the worker reports IDLE or OK", registry=r)
        self.draining = Gauge("byoc_registrar_draining", "1 once draining started", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
