"""The worker: a processor pool, the sessions using it, and the health the REST layer reports.

Everything the HTTP handlers do goes through here, so the same worker can be driven by the aiohttp app,
the pytrickle ``StreamServer`` shim, or a test directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
from typing import Any

import torch
from byoc_edge.schema import StreamStartRequest, output_size_refusal

from .capacity import SessionTable, StartInvalid, StartRefused
from .config import RuntimeConfig
from .media.encode import EncoderSettings, encoder_available
from .metrics import Metrics
from .origins import AllowedOrigins
from .processors.pool import PoolState, ProcessorPool
from .session import Session, SessionSettings

log = logging.getLogger(__name__)


class Health(enum.StrEnum):
    """pytrickle server.py ``/health``: LOADING until the model is loaded, IDLE with no stream, OK streaming."""

    LOADING = "LOADING"
    IDLE = "IDLE"
    OK = "OK"
    ERROR = "ERROR"


def session_settings(config: RuntimeConfig) -> SessionSettings:
    cuda = torch.cuda.is_available()
    device = {"cpu": None, "cuda": torch.device("cuda"), "auto": torch.device("cuda") if cuda else None}[
        config.frame_device
    ]
    hardware = config.hw_codecs == "auto" and cuda
    video_codec = "h264_nvenc" if hardware and encoder_available("h264_nvenc") else "libx264"
    return SessionSettings(
        encoder=EncoderSettings(video_codec=video_codec, gop_seconds=config.gop_seconds, preset=config.x264_preset),
        max_framerate=config.max_framerate,
        frame_device=device,
        hw_decode=hardware,
        processor_timeout=config.processor_timeout,
        heartbeat_interval=config.heartbeat_interval,
        interpolation=config.scale_interpolation,
        max_input_pixels=config.max_input_pixels,
        max_segment_bytes=config.max_segment_bytes,
        max_output_pixels=config.max_output_pixels,
    )


def torch_threads(config: RuntimeConfig, cpus: int | None = None) -> int:
    """Intra-op threads for CPU tensor work. torch defaults to one per core, and its spinning workers then
    starve the decode/encode threads: on the 2-core dev box a 720p->512 passthrough drops from ~110 fps
    serial throughput to ~45 fps with 2 torch threads (tests/runtime/bench_pipeline.py)."""
    if config.torch_threads:
        return config.torch_threads
    cpus = cpus or os.cpu_count() or 1
    return max(1, cpus // (2 * config.capacity))


class Worker:
    def __init__(
        self,
        config: RuntimeConfig,
        pool: ProcessorPool,
        metrics: Metrics | None = None,
        settings: SessionSettings | None = None,
    ) -> None:
        self.config = config
        self.pool = pool
        self.metrics = metrics or Metrics()
        self.settings = settings or session_settings(config)
        self.sessions: SessionTable[Session] = SessionTable(pool.size)
        self._origins = config.origins()
        # Draining: running sessions go on, new ones are refused (a Live Runner registrar asks for it before
        # unregistering, since a non-ready heartbeat would break the running sessions).
        self.draining = False
        self._drain_deadline = 0.0  # loop time the drain grace ends
        self._session_ended_event = asyncio.Event()
        self._load_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Begin loading processors in the background (``/health`` says LOADING meanwhile)."""
        self.metrics.capacity.set(self.pool.size)
        if self.origins.any:
            log.warning("no allowed origins configured: start requests may name trickle URLs on any origin")
        torch.set_num_threads(torch_threads(self.config))
        self._load_task = asyncio.create_task(self.pool.start())

    @property
    def origins(self) -> AllowedOrigins:
        return self._origins.current()

    @property
    def health(self) -> Health:
        if self.pool.state is PoolState.ERROR:
            return Health.ERROR
        if len(self.sessions):
            return Health.OK
        if self.pool.state is PoolState.LOADING:
            return Health.LOADING
        return Health.IDLE

    async def start_session(self, request: StreamStartRequest, stream_id: str | None = None) -> tuple[Session, bool]:
        """Start a session, or return the running one with the same ``gateway_request_id`` and channels
        (created=False). ``StartInvalid`` for URLs off the allowed origins, too large an output, or a running
        stream of that id on other channels (a different caller: it must not get that session)."""
        self.check_start(request)
        existing = self.sessions.get(request.gateway_request_id)
        if existing is not None and existing.active:
            return self._same_stream(existing, request), False
        if self.draining:
            self.metrics.sessions_rejected.labels("draining").inc()
            raise StartRefused("worker is draining: running sessions continue, new ones go elsewhere", "draining")
        if self.pool.state is PoolState.LOADING and not await self.pool.wait_loaded(self.config.start_wait):
            self.metrics.sessions_rejected.labels("loading").inc()
            raise StartRefused("Pipeline is still initializing. Please wait for IDLE status.", "loading")
        existing = self.sessions.get(request.gateway_request_id)  # a twin request may have won meanwhile
        if existing is not None and existing.active:
            return self._same_stream(existing, request), False
        if existing is not None:
            await existing.wait()
        if self.sessions.room <= 0:
            self.metrics.sessions_rejected.labels("capacity").inc()
            raise StartRefused(f"at capacity ({len(self.sessions)}/{self.sessions.capacity} sessions)", "capacity")
        host = self.pool.acquire()
        if host is None:
            reason = "error" if self.pool.state is PoolState.ERROR else "capacity"
            self.metrics.sessions_rejected.labels(reason).inc()
            # The load error's text is in the log (processors/host.py), not in a reply a gateway may see.
            detail = ": the processor failed to load" if self.pool.error else ""
            raise StartRefused(f"no processor instance available{detail}", reason)
        session = Session(
            request,
            stream_id or request.gateway_request_id,
            host,
            self.settings,
            self.metrics,
            default_params=self.config.params,
            on_end=self._session_ended,
        )
        self.sessions.add(session)
        session.start()
        self.metrics.sessions_started.inc()
        self.metrics.sessions_active.set(len(self.sessions))
        log.info("session %s started (%d/%d)", session.stream_id, len(self.sessions), self.sessions.capacity)
        return session, True

    def check_start(self, request: StreamStartRequest) -> None:
        refused = self.origins.refused_fields(request.url_fields())
        if refused:
            raise StartInvalid("; ".join(f"{name} {why}" for name, why in refused), "origin")
        why = output_size_refusal({**self.config.params, **request.params.as_dict()}, self.config.max_output_pixels)
        if why:
            raise StartInvalid(why, "output_size")

    @staticmethod
    def _same_stream(existing: Session, request: StreamStartRequest) -> Session:
        if existing.request.url_fields() != request.url_fields():
            raise StartInvalid(
                f"stream {request.gateway_request_id!r} is already running on other channels", "conflict", 409
            )
        return existing

    def drain(self) -> None:
        """Refuse new sessions from now on; running ones (and retried starts of them) carry on. The drain
        grace (``drain_seconds``) counts from the first call."""
        if not self.draining:
            log.info(
                "draining: %d sessions running, no new ones; grace %gs", len(self.sessions), self.config.drain_seconds
            )
            self._drain_deadline = asyncio.get_running_loop().time() + self.config.drain_seconds
        self.draining = True

    async def drained(self) -> bool:
        """Drain, then wait until no session runs (True) or the drain grace is over (False)."""
        self.drain()
        loop = asyncio.get_running_loop()
        while len(self.sessions):
            left = self._drain_deadline - loop.time()
            if left <= 0:
                return False
            self._session_ended_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._session_ended_event.wait(), left)
        return True

    async def shut_down(self) -> None:
        """On SIGTERM: let live sessions run out the drain grace, then end those left with a stop event and
        their output closed."""
        if not await self.drained():
            log.warning("drain grace over: stopping %d sessions", len(self.sessions))
            await asyncio.gather(
                *(s.stop("drain grace period over", end_output=True) for s in self.sessions), return_exceptions=True
            )

    def _session_ended(self, session: Session) -> None:
        self._session_ended_event.set()
        self.sessions.remove(session)
        self.pool.release(session.host, healthy=session.host_healthy)
        self.metrics.sessions_active.set(len(self.sessions))

    def find(self, key: str | None) -> Session | None:
        """The session named by ``key`` (request or stream id); with no key, the only session if just one."""
        if key:
            return self.sessions.get(key)
        running = list(self.sessions)
        return running[0] if len(running) == 1 else None

    def status(self) -> dict[str, Any]:
        sessions = [s.status() for s in self.sessions]
        first = sessions[0] if sessions else None
        health = self.health
        return {
            "state": health.value,
            "pipeline_ready": self.pool.state is PoolState.READY,
            "startup_complete": self.pool.state is not PoolState.LOADING,
            "active_streams": len(sessions),
            "capacity": self.sessions.capacity,
            "client_active": bool(sessions),
            "draining": self.draining,
            "error_message": self.pool.error,
            "fps": first["fps"] if first else {},
            # pytrickle's shape without its channel URLs: they are credentials (anyone holding one can read or
            # write the stream), and status is read by routers and probes, not only the orchestrator.
            "current_params": {"gateway_request_id": first["gateway_request_id"]} if first else None,
            "sessions": sessions,
        }

    async def close(self) -> None:
        await asyncio.gather(*(s.stop("worker shutting down") for s in self.sessions), return_exceptions=True)
        if self._load_task is not None:
            self._load_task.cancel()
            await asyncio.gather(self._load_task, return_exceptions=True)
        await self.pool.close()
