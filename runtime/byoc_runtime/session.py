"""One live stream: trickle in -> decode -> process -> encode -> trickle out, plus its control/events/data.

One owner task per session runs the stages as child tasks; each stage hands on through a bounded queue and
the heavy work happens off the event loop:

    ingest (loop: trickle Subscriber) --chunks--> decode lane (thread: SegmentDecoder)
      --av frames--> video/audio DropQueues (drop oldest: latency stays bounded when processing lags)
      --> process (processor host thread: scale/crop to tensor + process_video_async)
      --> encode DropQueue --> encode lane (thread: tensor -> uint8 -> H.264/Opus -> MPEG-TS)
      --> publish queue (bounded, waits) --> publish (loop: trickle Publisher, one POST per segment)

The session ends when the input channel ends (everything drains and the output channel is closed), on
``stop()``, or on a failure it cannot ride out, which it reports on the events channel before ending.
Contract details come from pytrickle ``client.py`` / ``protocol.py`` (v0.1.6) and go-livepeer
``byoc/trickle.go``; see the modules named in each method.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, cast

import aiohttp
import av
import torch
from pydantic import ValidationError

from . import data_channel, events, trickle
from .api.schema import MAX_JSON_DEPTH, StreamParams, StreamStartRequest, nesting_depth, output_size_refusal
from .frames import DEFAULT_HEIGHT, DEFAULT_WIDTH, AudioFrame, FrameOrigin, VideoFrame, is_video_frame
from .media.convert import DEFAULT_INTERPOLATION, rgb_to_tensor, rgb_to_video_frame, tensor_to_rgb, video_frame_to_rgb
from .media.decode import FrameRateLimiter, SegmentDecoder, SegmentReader, SegmentReport
from .media.encode import BufferedSink, EncoderSettings, SegmentBoundary, SegmentEncoder
from .media.geometry import plan_scale_crop
from .metrics import Metrics, RateMeter
from .processors.base import FrameProcessor
from .processors.host import ProcessorHost, ProcessorTimeout
from .queues import CLOSED, DropQueue, Pacer

log = logging.getLogger(__name__)

_END = object()  # end of the publish queue


class SessionState(enum.StrEnum):
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    ENDED = "ENDED"
    FAILED = "FAILED"


class OutputTooLarge(ValueError):
    """Params asking for a larger output than this worker makes."""


class SessionFailure(Exception):
    """A condition the session cannot ride out; it ends with an error event carrying this message."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Per-worker knobs every session shares (built from ``RuntimeConfig``)."""

    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    max_framerate: int = 24
    frame_device: torch.device | None = None  # None: CPU tensors, as pytrickle hands them out
    hw_decode: bool = False
    processor_timeout: float = 15.0
    heartbeat_interval: float = 10.0
    interpolation: str = DEFAULT_INTERPOLATION
    video_queue: int = 2  # decoded frames waiting for the processor; older ones are dropped
    audio_queue: int = 250  # ~5 s of 20 ms frames
    encode_queue: int = 16
    publish_queue: int = 256  # chunks; the encoder waits when the network is slower
    decode_backlog: int = 2  # segments read but not decoded yet before ingest stops reading
    # Catch-up: while more than this many seconds of decoded input wait in the jitter buffer (input ahead of
    # real time: a backlog of whole segments), frames go to the processor as fast as it takes them instead of
    # at the pace of their timestamps. Paced input never builds such a backlog and keeps being paced.
    catch_up_s: float = 0.5
    max_bad_segments: int = 10  # consecutive undecodable segments before giving up
    max_processor_errors: int = 100  # consecutive failing frames before giving up
    error_event_interval: float = 10.0  # at most one error event per kind per interval
    data_interval: float = 0.333  # pytrickle client.py batches data this often
    data_keepalive: float = 25.0
    unattended_limit_s: float = 300.0  # lifetime of a stream with neither input nor control channel
    # Untrusted media (RuntimeConfig): a larger input frame or segment ends the stream; a larger output is refused.
    max_input_pixels: int = 4096 * 4096
    max_segment_bytes: int = 64 * 1024 * 1024
    max_output_pixels: int = 1920 * 1080


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
        self.host = host
        self.params: dict[str, Any] = {**(default_params or {}), **request.params.as_dict()}
        self.width = int(self.params.get("width", DEFAULT_WIDTH))
        self.height = int(self.params.get("height", DEFAULT_HEIGHT))
        self.state = SessionState.STARTING
        self.last_error: str | None = None
        self.stop_reason: str | None = None
        self.started_at = time.time()
        self._on_end = on_end
        self._limiter = FrameRateLimiter(int(self.params.get("max_framerate", settings.max_framerate)))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: aiohttp.ClientSession | None = None  # shared by all of this session's trickle clients
        self._task: asyncio.Task[None] | None = None
        self._done = asyncio.Event()
        self._params_lock = asyncio.Lock()
        self._ending: asyncio.Task[None] | None = None  # a stop the orchestrator's closed channels asked for
        self._host_healthy = True
        self._end_output = False
        self._input_has_audio = False
        self._audio_expected_in_encoder = False
        self._video_q: DropQueue[tuple[av.VideoFrame, float]] = DropQueue(settings.video_queue)
        self._audio_q: DropQueue[tuple[av.AudioFrame, float]] = DropQueue(settings.audio_queue)
        self._encode_q: DropQueue[tuple[Any, ...]] = DropQueue(settings.encode_queue, lambda item: item[0] == "video")
        self._publish_q: asyncio.Queue[Any] = asyncio.Queue(settings.publish_queue)
        self._events_q: DropQueue[dict[str, Any]] = DropQueue(64)
        self._data_q: DropQueue[Any] = DropQueue(1000)
        self._producers_left = 2
        self._readers: set[SegmentReader] = set()
        self._bad_segments = 0
        self._pacer = Pacer()
        self._last_release = 0.0  # loop time the last paced frame is due
        self._decoder: SegmentDecoder | None = None
        self._held: deque[tuple[float, av.VideoFrame, float]] = deque()  # (due, frame, decoded_at), due order
        self._last_error_event: dict[str, float] = {}
        self._decode_pool = ThreadPoolExecutor(1, thread_name_prefix=f"decode-{stream_id[:16]}")
        self._encode_pool = ThreadPoolExecutor(1, thread_name_prefix=f"encode-{stream_id[:16]}")
        self.fps = {name: RateMeter() for name in ("ingress_video", "ingress_audio", "processed_video", "egress_video")}
        self.segments_in = 0
        self.segments_out = 0
        self.frames_dropped = 0

    # -- lifecycle --------------------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.state in (SessionState.STARTING, SessionState.RUNNING)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        instance = self.host.instance
        if hasattr(instance, "attach_data_sink"):
            instance.attach_data_sink(self._data_from_processor)
        if hasattr(instance, "attach_event_sink"):
            instance.attach_event_sink(self._event_from_processor)
        if hasattr(instance, "attach_input_sink"):
            instance.attach_input_sink(self._input_from_processor)
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
        aux: list[asyncio.Task[Any]] = []
        # One HTTP client per session, closed in _cleanup whatever happens: no connection outlives it.
        # Certificates are not verified, as in pytrickle: orchestrators serve trickle with self-signed ones.
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=False), timeout=aiohttp.ClientTimeout(total=None)
        )
        events_task = asyncio.create_task(self._write_events()) if self.request.events_url else None
        try:
            try:
                await self._stream_start_hook()
                self.state = SessionState.RUNNING
                self._emit_status()
                if self.request.events_url:
                    aux.append(asyncio.create_task(self._heartbeat()))
                if self.request.control_url:
                    aux.append(asyncio.create_task(self._control()))
                if self.request.data_url:
                    aux.append(asyncio.create_task(self._write_data()))
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._ingest(), name="ingest")
                    tg.create_task(self._process_video(), name="process-video")
                    tg.create_task(self._process_audio(), name="process-audio")
                    tg.create_task(self._encode(), name="encode")
                    tg.create_task(self._publish(), name="publish")
                self.stop_reason = self.stop_reason or "input ended"
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
            await self._cleanup(aux, events_task, outcome)

    def _fail(self, message: str, kind: str) -> None:
        self.state = SessionState.FAILED
        self.last_error = message
        self.stop_reason = message
        self.metrics.errors.labels(kind).inc()
        self._events_q.put(events.error(message, kind))
        log.warning("session %s failed: %s", self.stream_id, message)

    async def _cleanup(
        self, aux: list[asyncio.Task[Any]], events_task: asyncio.Task[None] | None, outcome: str
    ) -> None:
        for task in aux:
            task.cancel()
        for reader in list(self._readers):
            reader.abort()  # unblocks a decode thread waiting for bytes
        await asyncio.gather(*aux, return_exceptions=True)
        if self._host_healthy:
            try:
                await self.host.call_hook("on_stream_stop", limit_s=self.settings.processor_timeout)
            except ProcessorTimeout:
                self._host_healthy = False
            except Exception as exc:
                log.warning("session %s: on_stream_stop failed: %r", self.stream_id, exc)
        instance = self.host.instance
        if hasattr(instance, "attach_data_sink"):
            instance.attach_data_sink(None)
        if hasattr(instance, "attach_event_sink"):
            instance.attach_event_sink(None)
        if hasattr(instance, "attach_input_sink"):
            instance.attach_input_sink(None)
        if self.state is not SessionState.FAILED:
            self.state = SessionState.ENDED
        self._events_q.put(events.stream_stopped(self.stop_reason or outcome))
        self._emit_status()
        self._events_q.close()
        if events_task is not None:
            # Give the final events a moment to reach the gateway, but never hang on a dead server.
            done, _ = await asyncio.wait({events_task}, timeout=3.0)
            if not done:
                events_task.cancel()
                await asyncio.gather(events_task, return_exceptions=True)
        self._decode_pool.shutdown(wait=False, cancel_futures=True)
        self._encode_pool.shutdown(wait=False, cancel_futures=True)
        if self._http is not None:
            await self._http.close()
        self.metrics.sessions_ended.labels(outcome).inc()
        self._done.set()
        if self._on_end is not None:
            self._on_end(self)
        log.info("session %s ended (%s): %s", self.stream_id, outcome, self.stop_reason)

    async def _stream_start_hook(self) -> None:
        try:
            await self.host.call_hook("on_stream_start", dict(self.params), limit_s=self.settings.processor_timeout)
        except ProcessorTimeout as exc:
            self._host_healthy = False
            raise SessionFailure(str(exc), "processor_timeout") from exc
        except Exception as exc:
            # pytrickle client.py logs a failing on_stream_start and carries on; so do we, but say so.
            self._error_event(f"on_stream_start failed: {exc!r}", "processor")

    @property
    def host_healthy(self) -> bool:
        return self._host_healthy

    # -- ingest and decode ------------------------------------------------------------------------------

    async def _ingest(self) -> None:
        try:
            if not self.request.subscribe_url:
                # No input: the stream ends when the orchestrator closes its control channel (it always makes
                # one). With no control channel either nothing would ever end it but a stop that may not come.
                if self.request.control_url:
                    await asyncio.Event().wait()
                await asyncio.sleep(self.settings.unattended_limit_s)
                self.stop_reason = f"no input and no control channel: ended after {self.settings.unattended_limit_s:g}s"
                return
            await self._read_input(self.request.subscribe_url)
            # Frames still held by the pacer are due shortly; let them through before closing.
            await asyncio.sleep(max(0.0, self._last_release - asyncio.get_running_loop().time()) + 0.01)
            self._release_due()
        finally:
            self._video_q.close()
            self._audio_q.close()

    async def _read_input(self, url: str) -> None:
        """Feed each input segment's chunks to the decode lane as they arrive (pytrickle media.py
        ``_subscribe`` pipes them into one decoder instead). At most ``decode_backlog`` segments wait for
        the decoder; beyond that reading pauses, and the trickle server's window skips us ahead (470)."""
        loop = asyncio.get_running_loop()
        decoder = SegmentDecoder(hardware=self.settings.hw_decode, max_pixels=self.settings.max_input_pixels)
        self._decoder = decoder
        limit = self.settings.max_segment_bytes
        pending: deque[tuple[asyncio.Future[SegmentReport], SegmentReader]] = deque()
        async with trickle.Subscriber(url, session=self._http) as subscriber:
            async for segment in subscriber:
                self.segments_in += 1
                self.metrics.segments_in.inc()
                if self.segments_in == 1:
                    self._events_q.put(events.trace(events.FIRST_INGEST_SEGMENT))
                reader = SegmentReader()
                self._readers.add(reader)
                future = loop.run_in_executor(self._decode_pool, decoder.decode, reader, self._on_decoded)
                future.add_done_callback(lambda _, r=reader: self._readers.discard(r))
                pending.append((future, reader))
                try:
                    async for chunk in segment.iter_chunks():
                        if reader.bytes_fed + len(chunk) > limit:
                            reader.abort()
                            raise SessionFailure(f"input segment larger than {limit} bytes", "input")
                        await reader.put(chunk)
                        if future.done():
                            break  # the decoder stopped reading (refused input): do not wait for the rest
                except trickle.SegmentError as exc:
                    log.info("session %s: input segment cut short: %s", self.stream_id, exc)
                finally:
                    reader.finish()
                while pending and (len(pending) > self.settings.decode_backlog or pending[0][0].done()):
                    await self._settle_segment(*pending.popleft())
        while pending:
            await self._settle_segment(*pending.popleft())

    async def _settle_segment(self, future: asyncio.Future[SegmentReport], reader: SegmentReader) -> None:
        """Account for one decoded segment; too many undecodable ones in a row end the session."""
        report = await future
        if report.refused is not None:
            raise SessionFailure(report.refused, "input")
        if report.errors:
            self.metrics.errors.labels("decode").inc()
        if report.video_frames or report.audio_frames:
            self._bad_segments = 0
            return
        if reader.bytes_fed == 0:
            return  # an empty segment is not an error
        self._bad_segments += 1
        self._error_event(f"input segment could not be decoded: {'; '.join(report.errors)}", "decode")
        if self._bad_segments >= self.settings.max_bad_segments:
            raise SessionFailure(f"{self._bad_segments} input segments in a row could not be decoded", "decode")

    def _on_decoded(self, frame: av.VideoFrame | av.AudioFrame) -> None:
        """Decode thread: hand a decoded frame to the loop (frames faster than max_framerate are dropped)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        now = time.monotonic()
        if self._decoder is not None and self._decoder.has_audio:
            # Known from the segment's PMT: video decoded before the first audio frame (no demuxer parsing
            # delay) must still open output segments that carry audio.
            self._input_has_audio = True
        try:
            if isinstance(frame, av.VideoFrame):
                if not self._limiter.accept(float(frame.pts * frame.time_base)):
                    self.metrics.frames_dropped.labels("video", "framerate").inc()
                    return
                loop.call_soon_threadsafe(self._pace_video, frame, now)
            else:
                self._input_has_audio = True
                loop.call_soon_threadsafe(self._enqueue_audio, frame, now)
        except RuntimeError:
            pass  # loop closed during shutdown

    def _pace_video(self, frame: av.VideoFrame, decoded_at: float) -> None:
        self.metrics.frames_in.labels("video").inc()
        self.fps["ingress_video"].tick()
        loop = asyncio.get_running_loop()
        due = self._pacer.release_at(float(frame.pts * frame.time_base), decoded_at)
        self._last_release = max(self._last_release, due)
        if due <= loop.time() and not self._held:
            self._enqueue_video(frame, decoded_at)
        else:
            self._held.append((due, frame, decoded_at))
            loop.call_at(due, self._release_due)
            self._catch_up()

    def _release_due(self) -> None:
        """Timer: hand on the held frames whose release time has come (in order)."""
        now = asyncio.get_running_loop().time()
        while self._held and self._held[0][0] <= now:
            _, frame, decoded_at = self._held.popleft()
            self._enqueue_video(frame, decoded_at)

    def _catch_up(self) -> None:
        """When the processor waits for a frame while the jitter buffer holds more than ``catch_up_s`` of
        input, hand it the oldest held frame now: back-pressure instead of pacing. Only one frame is handed
        on at a time, so the drop-oldest queue never drops because of it; a processor slower than the input
        still lets held frames fall due and drop there, which keeps latency bounded."""
        if not self._held or len(self._video_q) or self._video_q.closed:
            return
        if self._encode_q.count(_is_video) > 1:
            return  # the encoder is the slower stage: let it take the frames in flight first
        if self._held[-1][0] - asyncio.get_running_loop().time() <= self.settings.catch_up_s:
            return
        _, frame, decoded_at = self._held.popleft()
        self._enqueue_video(frame, decoded_at)

    def _enqueue_video(self, frame: av.VideoFrame, decoded_at: float) -> None:
        if self._video_q.put((frame, decoded_at)) is not None:
            self.frames_dropped += 1
            self.metrics.frames_dropped.labels("video", "processing_behind").inc()

    def _enqueue_audio(self, frame: av.AudioFrame, decoded_at: float) -> None:
        self.metrics.frames_in.labels("audio").inc()
        self.fps["ingress_audio"].tick()
        if self._audio_q.put((frame, decoded_at)) is not None:
            self.metrics.frames_dropped.labels("audio", "processing_behind").inc()

    # -- processing -------------------------------------------------------------------------------------

    async def _convert_and_process(self, av_frame: av.VideoFrame) -> tuple[VideoFrame, Any, Exception | None, float]:
        """Runs on the processor's loop: scale/crop to a tensor, then ``process_video_async``."""
        started = time.perf_counter()
        rgb = video_frame_to_rgb(av_frame, self.width, self.height, self.settings.interpolation)
        tensor = rgb_to_tensor(rgb, self.settings.frame_device)
        frame = VideoFrame(tensor, av_frame.pts, av_frame.time_base)
        # No crop: the decoded frame itself can stand in for an unmodified tensor at encode time.
        needs_crop = plan_scale_crop(av_frame.width, av_frame.height, self.width, self.height).needs_crop
        source = None if needs_crop else av_frame
        frame.origin = FrameOrigin(tensor, tensor._version, rgb, source)
        frame.log_timestamps["frame_init"] = time.time()
        converted = time.perf_counter()
        self.metrics.stage_seconds.labels("convert").observe(converted - started)
        try:
            result = await self.host.instance.process_video_async(frame)
        except Exception as exc:
            return frame, None, exc, time.perf_counter() - converted
        return frame, result, None, time.perf_counter() - converted

    async def _process_video(self) -> None:
        consecutive_errors = 0
        # No video handler (an audio processor such as whisper): frames go to the encoder as decoded, untouched.
        untouched = getattr(type(self.host.instance), "process_video_async", None) is FrameProcessor.process_video_async
        try:
            while True:
                self._catch_up()
                if (item := await self._video_q.get()) is CLOSED:
                    break
                av_frame, decoded_at = item
                self.metrics.stage_seconds.labels("queue").observe(time.monotonic() - decoded_at)
                if untouched and av_frame.width * av_frame.height <= self.settings.max_output_pixels:
                    self.metrics.frames_processed.labels("video").inc()
                    self.fps["processed_video"].tick()
                    if self._encode_q.put(("video", av_frame, decoded_at)) is not None:
                        self.metrics.frames_dropped.labels("video", "encoding_behind").inc()
                    continue
                try:
                    frame, result, error, took = await self.host.call(
                        self._convert_and_process, av_frame, limit_s=self.settings.processor_timeout
                    )
                except ProcessorTimeout as exc:
                    self._host_healthy = False
                    raise SessionFailure(str(exc), "processor_timeout") from exc
                self.metrics.stage_seconds.labels("process").observe(took)
                if error is not None:
                    consecutive_errors += 1
                    self._error_event(f"process_video_async failed: {error!r}", "processor")
                    if consecutive_errors >= self.settings.max_processor_errors:
                        raise SessionFailure(f"processor failed on {consecutive_errors} frames in a row", "processor")
                    result = frame  # keep the stream alive with the input frame
                else:
                    consecutive_errors = 0
                try:
                    output = normalize_video_result(result, frame)
                except TypeError as exc:
                    self._error_event(str(exc), "processor")
                    output = frame
                if output is None:
                    self.metrics.frames_dropped.labels("video", "withheld").inc()
                    continue
                self.metrics.frames_processed.labels("video").inc()
                self.fps["processed_video"].tick()
                if self._encode_q.put(("video", output, decoded_at)) is not None:
                    self.metrics.frames_dropped.labels("video", "encoding_behind").inc()
        finally:
            self._producer_done()

    async def _process_audio(self) -> None:
        instance = self.host.instance
        # The default hook passes audio through; skip the round trip to the processor thread then.
        passthrough = getattr(type(instance), "process_audio_async", None) is FrameProcessor.process_audio_async
        try:
            while (item := await self._audio_q.get()) is not CLOSED:
                av_frame, _ = item
                if passthrough:
                    self._encode_q.put(("audio", av_frame, av_frame.pts, av_frame.time_base))
                    continue
                try:
                    result = await self.host.call(
                        instance.process_audio_async, AudioFrame(av_frame), limit_s=self.settings.processor_timeout
                    )
                except ProcessorTimeout as exc:
                    self._host_healthy = False
                    raise SessionFailure(str(exc), "processor_timeout") from exc
                except Exception as exc:
                    self._error_event(f"process_audio_async failed: {exc!r}", "processor")
                    continue
                for out in normalize_audio_result(result):
                    self.metrics.frames_processed.labels("audio").inc()
                    self._encode_q.put(("audio_frame", out))
        finally:
            self._producer_done()

    def _producer_done(self) -> None:
        self._producers_left -= 1
        if self._producers_left == 0:
            self._encode_q.close()

    # -- encode and publish -----------------------------------------------------------------------------

    async def _encode(self) -> None:
        loop = asyncio.get_running_loop()
        sink = BufferedSink()
        encoder = SegmentEncoder(sink, self.settings.encoder)
        publishing = bool(self.request.publish_url)
        try:
            while (item := await self._encode_q.get()) is not CLOSED:
                self._catch_up()
                if not publishing:
                    continue  # no output channel (data-only stream): processed frames go nowhere
                started = time.perf_counter()
                parts = await loop.run_in_executor(self._encode_pool, self._encode_item, encoder, sink, item)
                if item[0] == "video":
                    self.metrics.stage_seconds.labels("encode").observe(time.perf_counter() - started)
                    self.metrics.stage_seconds.labels("decode_to_encoded").observe(time.monotonic() - item[2])
                for part in parts:
                    await self._publish_q.put(part)
            if publishing:
                for part in await loop.run_in_executor(self._encode_pool, _close_encoder, encoder, sink):
                    await self._publish_q.put(part)
        finally:
            if not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    self._encode_pool.submit(encoder.close)  # frees codec contexts if we were cancelled
            with contextlib.suppress(asyncio.QueueFull):
                self._publish_q.put_nowait(_END)

    def _encode_item(self, encoder: SegmentEncoder, sink: BufferedSink, item: tuple[Any, ...]) -> list[Any]:
        """Encode thread: one processed frame into the current segment; returns the bytes produced."""
        if self._input_has_audio and not self._audio_expected_in_encoder:
            encoder.expect_audio()
            self._audio_expected_in_encoder = True
        kind = item[0]
        try:
            if kind == "video" and isinstance(item[1], av.VideoFrame):  # untouched (see _process_video)
                # Decoded frames always carry a timestamp (_on_decoded paced them by it).
                encoder.encode_video(item[1], cast(int, item[1].pts), cast(Fraction, item[1].time_base))
                self.metrics.frames_out.labels("video").inc()
                self.fps["egress_video"].tick()
            elif kind == "video":
                frame = item[1]
                origin = getattr(frame, "origin", None)
                tensor = frame.tensor
                # Unmodified input tensor (passthrough): reuse the uint8 image it was made from.
                reuse = isinstance(origin, FrameOrigin) and origin.matches(tensor)
                if reuse and origin.source is not None:
                    out = _scaled_yuv(
                        origin.source, origin.rgb.shape[1], origin.rgb.shape[0], self.settings.interpolation
                    )
                else:
                    out = rgb_to_video_frame(origin.rgb if reuse else tensor_to_rgb(tensor))
                encoder.encode_video(out, frame.timestamp, frame.time_base)
                self.metrics.frames_out.labels("video").inc()
                self.fps["egress_video"].tick()
            elif kind == "audio":
                _, av_frame, pts, time_base = item
                encoder.encode_audio(av_frame, pts, time_base)
                self.metrics.frames_out.labels("audio").inc()
            else:
                out = item[1]
                encoder.encode_audio(out.to_av_frame(), out.timestamp, out.time_base)
                self.metrics.frames_out.labels("audio").inc()
        except (ValueError, TypeError, av.error.FFmpegError) as exc:
            self.metrics.frames_dropped.labels("video" if kind == "video" else "audio", "unencodable").inc()
            loop = self._loop
            if loop is not None:
                loop.call_soon_threadsafe(self._error_event, f"cannot encode processor output: {exc}", "encode")
        return sink.drain()

    async def _publish(self) -> None:
        if not self.request.publish_url:
            while await self._publish_q.get() is not _END:
                pass
            return
        publisher = trickle.Publisher(self.request.publish_url, mime_type="video/mp2t", session=self._http)
        segment: contextlib.AsyncExitStack | None = None
        writer: Any = None
        finished = False
        try:
            while (part := await self._publish_q.get()) is not _END:
                try:
                    if isinstance(part, SegmentBoundary):
                        if segment is not None:
                            await segment.aclose()
                        segment = contextlib.AsyncExitStack()
                        writer = await segment.enter_async_context(publisher.segment())
                        self._segment_published()
                    elif writer is not None:
                        await writer.write(part)
                except trickle.ChannelClosed as exc:
                    raise SessionFailure(f"output channel closed by the server: {exc}", "transport") from exc
                except trickle.SegmentError as exc:
                    # That one segment is lost; the publisher goes on with the next (trickle/__init__.py).
                    self.metrics.errors.labels("publish").inc()
                    log.info("session %s: output segment dropped: %s", self.stream_id, exc)
                    segment, writer = None, None
            finished = True
        finally:
            if segment is not None:
                with contextlib.suppress(trickle.TrickleError):
                    await segment.aclose()
            # The orchestrator owns the channels (pytrickle never deletes them). The output is deleted only when
            # the worker ends the stream on its own, a drain or a failure (cancelled by the task group, not by
            # stop(), so not STOPPING): the gateway's output reader then sees the end and swaps orchestrator.
            # At a natural end (input over) it is left alone: the gateway is ending the stream itself, and an
            # output EOS would race its teardown into a needless swap (go-livepeer byoc/trickle.go).
            failed = not finished and self.state is not SessionState.STOPPING
            await publisher.close(delete=self._end_output or failed)

    def _segment_published(self) -> None:
        self.segments_out += 1
        self.metrics.segments_out.inc()
        if self.segments_out == 1:
            self._events_q.put(events.trace(events.FIRST_PROCESSED_SEGMENT))

    # -- params, control, events, data -----------------------------------------------------------------

    async def update_params(self, params: dict[str, Any], source: str = "api") -> dict[str, Any]:
        """Validate and apply new params (from ``/stream/params`` or the control channel)."""
        validated = StreamParams.model_validate(params).as_dict()
        too_big = output_size_refusal(validated, self.settings.max_output_pixels)
        if too_big:
            raise OutputTooLarge(too_big)
        async with self._params_lock:
            if "width" in validated:
                self.width, self.height = int(validated["width"]), int(validated["height"])
            if "max_framerate" in validated:
                self._limiter.max_fps = int(validated["max_framerate"])
            self.params.update(validated)
            method = getattr(self.host.instance, "update_params", None)
            if method is not None:
                await self.host.call(method, dict(validated), limit_s=self.settings.processor_timeout)
        self._events_q.put(events.params_updated(validated))
        self._emit_status()
        log.info("session %s params updated from %s: %s", self.stream_id, source, validated)
        return validated

    async def _control(self) -> None:
        """Params from the gateway's control channel; keepalives (``{"keep":"alive"}``) are skipped. The
        channel ending (closed, or gone: 404) ends the stream: the orchestrator closes all of a stream's
        channels together when it ends it without calling the worker (insufficient balance, its control
        monitor; go-livepeer ``byoc/stream_orchestrator.go``, ``core/external_capabilities.go`` ``RemoveStream``),
        and a restarted orchestrator has none."""
        try:
            async with trickle.JsonSubscriber(self.request.control_url, session=self._http) as control:
                await self._apply_control(control)
        except trickle.TrickleError as exc:
            # Unreachable rather than closed: report, keep streaming (the input or a stop still ends it).
            self._error_event(f"control channel lost: {exc}", "control")
            return
        self._end_by_orchestrator("control channel closed by the orchestrator")

    def _end_by_orchestrator(self, reason: str) -> None:
        """The orchestrator closed this stream's channels: stop it here too, freeing its slot."""
        if not self.active or self._ending is not None:
            return
        log.info("session %s: %s", self.stream_id, reason)
        self._ending = asyncio.create_task(self.stop(reason))

    async def _apply_control(self, control: Any) -> None:
        async for message in control:
            if trickle.is_keepalive(message) or not isinstance(message, dict):
                continue
            if nesting_depth(message) > MAX_JSON_DEPTH:
                self._error_event(f"control message nested deeper than {MAX_JSON_DEPTH} levels: ignored", "params")
                continue
            try:
                await self.update_params(message, source="control")
            except ValidationError as exc:
                self._error_event(f"invalid params on control channel: {exc.errors(include_url=False)}", "params")
            except OutputTooLarge as exc:
                self._error_event(f"invalid params on control channel: {exc}", "params")
            except Exception as exc:
                self._error_event(f"update_params failed: {exc!r}", "processor")

    def fps_stats(self) -> dict[str, float]:
        return {f"{name}_fps": meter.rate() for name, meter in self.fps.items()}

    def _emit_status(self) -> None:
        self._events_q.put(events.status(self.state.value, self.params, self.fps_stats(), self.last_error))

    def _error_event(self, message: str, kind: str) -> None:
        self.last_error = message
        self.metrics.errors.labels(kind).inc()
        now = time.monotonic()
        if now - self._last_error_event.get(kind, -1e9) < self.settings.error_event_interval:
            return
        self._last_error_event[kind] = now
        log.warning("session %s: %s", self.stream_id, message)
        self._events_q.put(events.error(message, kind))

    async def _heartbeat(self) -> None:
        while True:
            urls = self.request.reported_urls()
            self._events_q.put(events.heartbeat(urls, self.width, self.height, self.fps_stats()))
            await asyncio.sleep(self.settings.heartbeat_interval)

    async def _write_events(self) -> None:
        publisher = trickle.JsonPublisher(self.request.events_url, session=self._http)
        try:
            while (event := await self._events_q.get()) is not CLOSED:
                try:
                    await publisher.send(event)
                except trickle.ChannelClosed as exc:  # ChannelNotFound included
                    self._end_by_orchestrator(f"events channel closed by the orchestrator: {exc}")
                except trickle.TrickleError as exc:
                    self.metrics.errors.labels("events").inc()
                    log.info("session %s: event not delivered: %s", self.stream_id, exc)
        finally:
            await publisher.close(delete=False)

    def _event_from_processor(self, event: dict[str, Any], queue_event_type: str) -> None:
        """Called by the processor (any thread) to publish a monitoring event on the events channel."""
        self._on_loop(self._events_q.put, events.envelope(event, queue_event_type))

    def _data_from_processor(self, data: Any) -> None:
        """Called by the processor (any thread) to publish a data item."""
        self._on_loop(self._data_q.put, data)

    def _input_from_processor(self, frame: VideoFrame | AudioFrame) -> None:
        """Called by the processor (any thread): a frame it made, into the input queues as if decoded (no jitter
        buffer: it is due now)."""
        decoded_at = time.monotonic()
        if isinstance(frame, VideoFrame):
            av_frame = frame.to_av_frame()
            av_frame.pts, av_frame.time_base = frame.timestamp, frame.time_base
            self._on_loop(functools.partial(self._enqueue_video, decoded_at=decoded_at), av_frame)
        elif isinstance(frame, AudioFrame):
            self._on_loop(functools.partial(self._enqueue_audio, decoded_at=decoded_at), frame.to_av_frame())
        else:
            raise TypeError(f"send_input_frame takes a VideoFrame or an AudioFrame, not {type(frame).__name__}")

    def _on_loop(self, put: Callable[[Any], Any], item: Any) -> None:
        """Hand an item from a processor thread to the session's loop (dropped once the loop is gone)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(put, item)

    async def _write_data(self) -> None:
        """The processor's data in pytrickle's format (``data_channel.py``): every 333 ms one segment of
        JSON-array lines, ``[]`` after 25 s of silence."""
        publisher = trickle.Publisher(self.request.data_url, mime_type="application/jsonl", session=self._http)
        last_sent = time.monotonic()
        try:
            while True:
                await asyncio.sleep(self.settings.data_interval)
                items = []
                while len(self._data_q):
                    items.append(await self._data_q.get())
                if not items and time.monotonic() - last_sent < self.settings.data_keepalive:
                    continue
                out = data_channel.batch(items)
                if out.too_long:
                    self._error_event(
                        f"{out.too_long} data item(s) dropped: over {data_channel.MAX_LINE_BYTES} bytes as JSON, "
                        "longer than the gateway reads a line",
                        "data",
                    )
                try:
                    async with publisher.segment() as writer:
                        await writer.write(out.payload if items else data_channel.KEEPALIVE)
                    last_sent = time.monotonic()
                except trickle.ChannelClosed as exc:  # ChannelNotFound included
                    self._end_by_orchestrator(f"data channel closed by the orchestrator: {exc}")
                    return
                except trickle.TrickleError as exc:
                    self.metrics.errors.labels("data").inc()
                    log.info("session %s: data not delivered: %s", self.stream_id, exc)
        finally:
            await publisher.close(delete=False)

    # -- reporting --------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "stream_id": self.stream_id,
            "gateway_request_id": self.request_id,
            "state": self.state.value,
            "params": self.params,
            "width": self.width,
            "height": self.height,
            "fps": self.fps_stats(),
            "segments_in": self.segments_in,
            "segments_out": self.segments_out,
            "frames_dropped": self.frames_dropped,
            "last_error": self.last_error,
            "started_at": self.started_at,
            "uptime_s": round(time.time() - self.started_at, 1),
        }


def _scaled_yuv(frame: av.VideoFrame, width: int, height: int, interpolation: str) -> av.VideoFrame:
    """The decoded frame as the encoder takes it (yuv420p at the output size), without going through RGB."""
    if (frame.width, frame.height) == (width, height) and frame.format.name == "yuv420p":
        return frame
    return frame.reformat(width=width, height=height, format="yuv420p", interpolation=interpolation)


def _is_video(item: tuple[Any, ...]) -> bool:
    return item[0] == "video"


def _close_encoder(encoder: SegmentEncoder, sink: BufferedSink) -> list[bytes | SegmentBoundary]:
    encoder.close()
    return sink.drain()


def normalize_video_result(result: Any, frame: VideoFrame) -> Any:
    """What a processor returned -> a frame to encode, or None to skip (pytrickle client.py semantics).

    ``None`` and pytrickle's ``VideoProcessingResult.WITHHELD`` skip the frame; a bare tensor is taken as the
    new image for this frame; anything frame-like (ours, or a real pytrickle ``VideoFrame``) is used as is.
    """
    if result is None or getattr(result, "value", None) == "withheld":
        return None
    if isinstance(result, torch.Tensor):
        return frame.replace_tensor(result)
    if is_video_frame(result):
        return result
    raise TypeError(f"process_video_async returned {type(result).__name__}, expected a VideoFrame or None")


def normalize_audio_result(result: Any) -> list[Any]:
    """``None`` drops the audio (pytrickle client.py); one frame or a list of frames pass on."""
    if result is None:
        return []
    if isinstance(result, list | tuple):
        return [f for f in result if f is not None]
    return [result]
