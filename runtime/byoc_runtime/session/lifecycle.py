"""``Session``: one stream's lifecycle, and the stages and side channels it runs.

``start()`` runs one owner task; it calls the processor's ``on_stream_start``, then runs the media stages
(``pipeline``) and the side channels beside them (events, heartbeat, control, data). It ends when the input
ends (everything drains), on ``stop()``, when the orchestrator closes the stream's channels, or on a failure it
cannot ride out, which it reports on the events channel first. Whatever the end, ``on_stream_stop`` is called
(unless the processor is stuck), the stop is reported, and every thread, connection and slot is released.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from byoc_edge.schema import StreamParams, StreamStartRequest, output_size_refusal

from .. import events, trickle
from ..metrics import Metrics
from ..processors.host import ProcessorHost
from .context import StageContext
from .control_in import follow_control
from .data_out import DataOut
from .events_out import EventsOut
from .params import SessionParams, shown
from .pipeline import Pipeline
from .processor import ProcessorLink, ProcessorSinks
from .settings import OutputTooLarge, SessionFailure, SessionSettings
from .stats import StreamStats

log = logging.getLogger(__name__)


class SessionState(enum.StrEnum):
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    ENDED = "ENDED"
    FAILED = "FAILED"


class Session:
    """Owns one stream's pipeline. Create, ``start()``, then ``stop()`` or let it end by itself."""

    def __init__(
        self,
        request: StreamStartRequest,
        stream_id: str,
        host: ProcessorHost,
        settings: SessionSettings,
        metrics: Metrics,
        default_params: dict[str, Any] | None = None,
        on_end: Callable[[Session], None] | None = None,
    ) -> None:
        self.request = request
        self.stream_id = stream_id
        self.request_id = request.gateway_request_id
        self.settings = settings
        self.metrics = metrics
        self.state = SessionState.STARTING
        self.stop_reason: str | None = None
        self.started_at = time.time()
        self._on_end = on_end
        self._params = SessionParams(default_params or {}, request.params.as_dict(), settings.max_framerate)
        self._processor = ProcessorLink(host, settings.processor_timeout)
        self.stats = StreamStats()
        self.events = EventsOut(stream_id, metrics, settings.error_event_interval)
        self._data = DataOut(stream_id, metrics, self.events)
        self._data_task: asyncio.Task[None] | None = None
        ctx = StageContext(stream_id, settings, metrics, self.stats, self.events)
        self._pipeline = Pipeline(ctx, request, self._processor, self._params, self._delete_output)
        self._task: asyncio.Task[None] | None = None
        self._done = asyncio.Event()
        self._ending: asyncio.Task[None] | None = None  # a stop the orchestrator's closed channels asked for
        self._end_output = False

    # -- what callers read ------------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.state in (SessionState.STARTING, SessionState.RUNNING)

    @property
    def host(self) -> ProcessorHost:
        return self._processor.host

    @property
    def host_healthy(self) -> bool:
        return self._processor.healthy

    @property
    def params(self) -> dict[str, Any]:
        """Every param the stream runs with (the worker's defaults included): for the processor, never echoed."""
        return self._params.values

    @property
    def width(self) -> int:
        return self._params.width

    @property
    def height(self) -> int:
        return self._params.height

    @property
    def last_error(self) -> str | None:
        return self.events.last_error

    def fps_stats(self) -> dict[str, float]:
        return self.stats.fps()

    def status(self) -> dict[str, Any]:
        return {
            "stream_id": self.stream_id,
            "gateway_request_id": self.request_id,
            "state": self.state.value,
            "params": self._params.echo(),
            "width": self.width,
            "height": self.height,
            "fps": self.stats.fps(),
            "segments_in": self.stats.segments_in,
            "segments_out": self.stats.segments_out,
            "frames_dropped": self.stats.frames_dropped,
            "last_error": self.last_error,
            "started_at": self.started_at,
            "uptime_s": round(time.time() - self.started_at, 1),
        }

    # -- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> None:
        sinks = ProcessorSinks(
            asyncio.get_running_loop(),
            self._data.put,
            self.events.put,
            self._pipeline.decoded.put_video,
            self._pipeline.decoded.put_audio,
        )
        self._processor.attach(sinks)
        self._task = asyncio.create_task(self._run(), name=f"session-{self.stream_id}")

    async def stop(self, reason: str = "stopped", limit_s: float = 10.0, end_output: bool = False) -> None:
        """Stop the pipeline, report it, and wait (bounded) until everything is released. ``end_output``: the
        worker ends the stream itself (drain grace over), so the output channel is closed as at a natural end."""
        if self._task is None or self._task.done():
            return
        self.stop_reason = reason
        self._end_output = end_output
        self.state = SessionState.STOPPING
        self._task.cancel()
        await asyncio.wait({self._task}, timeout=limit_s)

    async def wait(self) -> None:
        await self._done.wait()

    async def _run(self) -> None:
        outcome = "completed"
        side: list[asyncio.Task[Any]] = []
        # One HTTP client per session, closed in _cleanup whatever happens: no connection outlives it.
        # Certificates are not verified, as in pytrickle: orchestrators serve trickle with self-signed ones.
        http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=False), timeout=aiohttp.ClientTimeout(total=None)
        )
        url = self.request.events_url
        events_task = asyncio.create_task(self.events.write(url, http, self._end_by_orchestrator)) if url else None
        try:
            try:
                await self._stream_start_hook()
                self.state = SessionState.RUNNING
                self._emit_status()
                side = self._side_channels(http)
                ended_by = await self._pipeline.run(http)
                self.stop_reason = ended_by or self.stop_reason or "input ended"
            except* SessionFailure as group:
                failure = group.exceptions[0]
                assert isinstance(failure, SessionFailure)
                outcome = "failed"
                self._fail(str(failure), failure.kind)
            except* trickle.TrickleError as group:
                outcome = "failed"
                self._fail(f"trickle: {group.exceptions[0]}", "transport")
            except* Exception as group:
                outcome = "failed"
                log.error("session %s crashed", self.stream_id, exc_info=group.exceptions[0])
                self._fail(f"internal error: {group.exceptions[0]!r}", "internal")
        except asyncio.CancelledError:
            outcome = "stopped"
        finally:
            await self._cleanup(side, events_task, http, outcome)

    def _side_channels(self, http: aiohttp.ClientSession) -> list[asyncio.Task[Any]]:
        """The heartbeat and control tasks (stopped first at the end); the data writer is ``self._data_task``."""
        request, settings = self.request, self.settings
        tasks: list[asyncio.Task[Any]] = []
        if request.events_url:
            tasks.append(asyncio.create_task(self.events.heartbeat(settings.heartbeat_interval, self._heartbeat)))
        if request.control_url:
            control = follow_control(
                request.control_url, http, self.update_params, self.events, self._end_by_orchestrator
            )
            tasks.append(asyncio.create_task(control))
        if request.data_url:
            data = self._data.write(
                request.data_url, http, settings.data_interval, settings.data_keepalive, self._end_by_orchestrator
            )
            self._data_task = asyncio.create_task(data)
        return tasks

    def _fail(self, message: str, kind: str) -> None:
        self.state = SessionState.FAILED
        self.stop_reason = message
        self.events.failure(message, kind)

    def _delete_output(self, finished: bool) -> bool:
        """Whether the output channel is deleted when publishing ends. The orchestrator owns the channels (pytrickle
        never deletes them). The output is deleted only when the worker ends the stream on its own, a drain or a
        failure (cancelled by the task group, not by stop(), so not STOPPING): the gateway's output reader then
        sees the end and swaps orchestrator. At a natural end (input over) it is left alone: the gateway is ending
        the stream itself, and an output EOS would race its teardown into a needless swap (go-livepeer
        byoc/trickle.go)."""
        return self._end_output or (not finished and self.state is not SessionState.STOPPING)

    def _end_by_orchestrator(self, reason: str) -> None:
        """The orchestrator closed this stream's channels: stop it here too, freeing its slot."""
        if not self.active or self._ending is not None:
            return
        log.info("session %s: %s", self.stream_id, reason)
        self._ending = asyncio.create_task(self.stop(reason))

    async def _stream_start_hook(self) -> None:
        try:
            await self._processor.call_hook("on_stream_start", dict(self._params.values))
        except SessionFailure:
            raise
        except Exception as exc:
            # pytrickle client.py logs a failing on_stream_start and carries on; so do we, but say so.
            self.events.error(f"on_stream_start failed: {exc!r}", "processor")

    async def _cleanup(
        self,
        side: list[asyncio.Task[Any]],
        events_task: asyncio.Task[None] | None,
        http: aiohttp.ClientSession,
        outcome: str,
    ) -> None:
        for task in side:
            task.cancel()
        self._pipeline.abort()
        await asyncio.gather(*side, return_exceptions=True)
        await self._processor.stream_stopped(self.stream_id)
        self._processor.attach(None)
        if self._data_task is not None:
            # What the processor sent up to its stop hook still goes out (a live captioner's last words), but
            # a dead data channel never holds the end up.
            self._data.close()
            done, _ = await asyncio.wait({self._data_task}, timeout=3.0)
            if not done:
                self._data_task.cancel()
                await asyncio.gather(self._data_task, return_exceptions=True)
        if self.state is not SessionState.FAILED:
            self.state = SessionState.ENDED
        self.events.put(events.stream_stopped(self.stop_reason or outcome))
        self._emit_status()
        self.events.close()
        if events_task is not None:
            # Give the final events a moment to reach the gateway, but never hang on a dead server.
            done, _ = await asyncio.wait({events_task}, timeout=3.0)
            if not done:
                events_task.cancel()
                await asyncio.gather(events_task, return_exceptions=True)
        self._pipeline.close()
        await http.close()
        self.metrics.sessions_ended.labels(outcome).inc()
        self._done.set()
        if self._on_end is not None:
            self._on_end(self)
        log.info("session %s ended (%s): %s", self.stream_id, outcome, self.stop_reason)

    # -- params and status ------------------------------------------------------------------------------

    async def update_params(self, params: dict[str, Any], source: str = "api") -> dict[str, Any]:
        """Validate and apply new params (from ``/stream/params`` or the control channel)."""
        validated = StreamParams.model_validate(params).as_dict()
        too_big = output_size_refusal(validated, self.settings.max_output_pixels)
        if too_big:
            raise OutputTooLarge(too_big)
        async with self._params.lock:
            self._params.apply(validated)
            method = getattr(self._processor.instance, "update_params", None)
            if method is not None:
                # Not ProcessorLink.call: a slow update fails this request only (as in pytrickle); a stuck
                # processor fails the stream at its next frame.
                await self.host.call(method, dict(validated), limit_s=self.settings.processor_timeout)
        self.events.put(events.params_updated(shown(validated)))
        self._emit_status()
        log.info("session %s params updated from %s: keys %s", self.stream_id, source, ", ".join(sorted(validated)))
        return validated

    def _emit_status(self) -> None:
        self.events.put(events.status(self.state.value, self._params.echo(), self.stats.fps(), self.last_error))

    def _heartbeat(self) -> dict[str, Any]:
        return events.heartbeat(self.request.reported_urls(), self.width, self.height, self.stats.fps())
