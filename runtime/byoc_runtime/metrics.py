"""Prometheus metrics of one worker process (served at ``/metrics``).

Each ``Metrics`` has its own registry so several workers (tests, the pytrickle ``StreamServer`` shim) can
live in one process without clashing.
"""

from __future__ import annotations

import gc
import time
import weakref
from collections import deque
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Per-stage latency: from sub-millisecond conversions to multi-second stalls.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12)

CONTENT_TYPE = CONTENT_TYPE_LATEST

M = TypeVar("M", Counter, Histogram)


class Children(Generic[M]):
    """A labelled metric whose children are looked up once: prometheus_client's ``labels()`` checks the values
    and takes a lock on every call, several times per frame on the media path."""

    def __init__(self, metric: M) -> None:
        self._metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def labels(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.capacity = Gauge("byoc_capacity", "Sessions this worker can run at once", registry=r)
        self.sessions_active = Gauge("byoc_sessions_active", "Sessions running now", registry=r)
        self.sessions_started = Counter("byoc_sessions_started", "Sessions started", registry=r)
        self.sessions_rejected = Counter("byoc_sessions_rejected", "Stream starts refused", ["reason"], registry=r)
        self.sessions_ended = Counter("byoc_sessions_ended", "Sessions ended", ["outcome"], registry=r)
        self.frames_in = Children(Counter("byoc_frames_in", "Frames decoded from input", ["kind"], registry=r))
        self.frames_processed = Children(
            Counter("byoc_frames_processed", "Frames returned by the processor", ["kind"], registry=r)
        )
        self.frames_out = Children(Counter("byoc_frames_out", "Frames encoded into output", ["kind"], registry=r))
        self.frames_dropped = Children(
            Counter("byoc_frames_dropped", "Frames dropped, by stage and why", ["kind", "reason"], registry=r)
        )
        self.segments_in = Counter("byoc_segments_in", "Input segments read", registry=r)
        self.segments_out = Counter("byoc_segments_out", "Output segments published", registry=r)
        self.errors = Children(Counter("byoc_errors", "Errors, by kind", ["kind"], registry=r))
        self.stage_seconds = Children(
            Histogram(
                "byoc_stage_seconds",
                "Time per video frame in each pipeline stage: decode, reorder (held in the decoder for B-frames), "
                "queue (decoded -> picked up by the "
                "processor), convert (the tensor, when the processor reads it), process, encode (the encoder's "
                "own time), decode_to_encoded",
                ["stage"],
                buckets=LATENCY_BUCKETS,
                registry=r,
            )
        )
        self.gc_pause_seconds = Histogram(
            "byoc_gc_pause_seconds",
            "Python garbage collector pauses, by generation: every thread of the worker waits while one runs",
            ["generation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        _GC_HISTOGRAMS.add(self.gc_pause_seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


# One gc callback for the process, feeding every live Metrics' histogram (tests make many).
_GC_HISTOGRAMS: weakref.WeakSet[Histogram] = weakref.WeakSet()
_gc_started = 0.0


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    global _gc_started
    if phase == "start":
        _gc_started = time.perf_counter()
        return
    pause = time.perf_counter() - _gc_started
    generation = str(info.get("generation", ""))
    for histogram in list(_GC_HISTOGRAMS):
        histogram.labels(generation).observe(pause)


gc.callbacks.append(_on_gc)


class RateMeter:
    """Events per second over a sliding window (for fps figures in status and heartbeats)."""

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self._times: deque[float] = deque()
        self.total = 0

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._times.append(now)
        self.total += 1
        self._trim(now)

    def _trim(self, now: float) -> None:
        cutoff = now - self.window
        while self._times and self._times[0] < cutoff:
            self._times.popleft()

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._trim(now)
        return round(len(self._times) / self.window, 2)
