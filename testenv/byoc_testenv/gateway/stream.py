"""A BYOC live stream as go-livepeer's gateway runs it, and the gateway that starts streams.

Upstream, function by function (go-livepeer ``byoc/stream_gateway.go`` unless named otherwise):
- :meth:`Gateway.start_stream`: ``StartStream``: ``setupGatewayJob`` finds the orchestrators
  (``byoc/job_gateway.go`` ``getJobOrchestrators``; none: "No orchestrators found for capability X"), ``setupStream``
  names the stream (``stream_name-stream_id``) and its start body ``{"params": ...}``; then ``runStream`` and
  ``monitorStream`` run in the background and the caller gets the stream at once.
- ``runStream``: the orchestrators found at the start are tried in order, each at most once; a later one gets a
  fresh token first (``refreshToken``). ``POST /ai/stream/start`` with the signed job header: no reply at all means
  the next orchestrator; any reply (its status is not looked at) means its ``X-*-Url`` channels are used, and a
  reply without control or events URL ends the stream (``startStreamProcessing`` fails: no swap). When that
  orchestrator's session ends (``session.py``), a stop with the reason as body goes to it; then the stream ends if
  it was stopped, or if more than 2 swaps were counted and the last one was less than the swap window ago; else it
  swaps to the next orchestrator. The list used up ends the stream.
- ``monitorStream``: when the stream ends, a stop with body "stream ended" goes to the orchestrator still current.
- :meth:`GatewayStream.stop`: ``StopStream``: a stop (the caller's body) to the current orchestrator, then
  ``stopStreamPipeline`` (the control channel closed, the session ended with "context canceled"); ``runStream`` and
  ``monitorStream`` then send their own stops, so up to three stops reach the worker, as upstream.
- :meth:`GatewayStream.update`: ``UpdateStream``: a fresh token, then the body is cached and sent to
  ``/ai/stream/update``; ``startControlPublish`` writes the cached body on every later orchestrator's control
  channel. The stream's control publisher is replaced per orchestrator (the old channel closed) and closed at the end.
- stops (``sendStopStreamToOrch``): a fresh token, then ``/ai/stream/stop`` with a 10 s job timeout.

Input: ``input_segments`` (MPEG-TS) are published in real time, frame by frame at their timestamps, into the
current orchestrator's input channel (``SwitchableSegmentReader``: the input goes on across swaps; a segment due
while no orchestrator runs is dropped). When they run out the input stays open and quiet, like an idle ingest: the
stream lives on until :meth:`GatewayStream.stop` or a watchdog. Payments (price 0 off-chain) are not made.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import aiohttp
from byoc_runtime import trickle

from byoc_testenv.devstream.mpegts import PTS_HZ, split_frames

from .jobs import JobRequest, OrchestratorError, OrchestratorToken, find_orchestrators, get_token, send_job
from .record import StreamRecord
from .session import CANCELLED, ChannelUrls, OrchestratorSession, TimedPiece
from .timings import GatewayTimings

log = logging.getLogger(__name__)

MAX_SWAPS = 2  # runStream: "swapCnt > 2"
STOP_JOB_TIMEOUT = 10  # sendStopStreamToOrch: the stop job's timeout_seconds
STREAM_ENDED = b"stream ended"  # monitorStream's stop body

EndKind = Literal["stopped", "swap_limit", "exhausted", "invalid_urls"]


class NoOrchestrators(RuntimeError):
    """No orchestrator reported free capacity for the capability (upstream: 400 to the client)."""


class StreamExists(RuntimeError):
    """A stream with this id is still running on this gateway (upstream: 400 "stream already exists")."""


@dataclass(frozen=True)
class StreamEnd:
    kind: EndKind  # stopped by the caller, too many swaps, every orchestrator tried, unusable start reply
    reason: str  # why the last session ended, or why the start reply could not be used


@dataclass
class Attempt:
    """The stream at one orchestrator."""

    orchestrator: str  # its service address
    status: int | None = None  # the start reply's status; None: no reply came
    body: bytes = b""  # the start reply's body (upstream discards both)
    end_reason: str | None = None  # why its session ended


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


def paced(segments: Sequence[bytes], t0: float) -> list[list[TimedPiece]]:
    """Each segment cut at its video frames, each piece due at ``t0`` + its PTS offset from the first frame (a
    segment without video frames goes whole, when the one before it ended)."""
    split = [split_frames(segment) for segment in segments]
    first = next((pieces[0].pts for pieces in split if pieces), 0)
    out: list[list[TimedPiece]] = []
    due = t0
    for segment, pieces in zip(segments, split, strict=True):
        if pieces:
            out.append([TimedPiece(t0 + (p.pts - first) / PTS_HZ, p.data) for p in pieces])
        else:
            out.append([TimedPiece(due, segment)])
        due = out[-1][-1].due
    return out


class GatewayStream:
    """A running stream; see the module docstring. Create it with :meth:`Gateway.start_stream`."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        stream_id: str,
        capability: str,
        orchestrators: list[OrchestratorToken],
        start_job: JobRequest,
        start_body: bytes,
        timings: GatewayTimings,
        data_output: bool,
        keep_output: bool,
    ) -> None:
        self.stream_id = stream_id
        self.capability = capability
        self.record = StreamRecord(keep_output=keep_output)
        self.attempts: list[Attempt] = []
        self.end: StreamEnd | None = None
        self._http = http
        self._orchestrators = orchestrators
        self._start_job = start_job
        self._start_body = start_body
        self._timings = timings
        self._data_output = data_output
        self._current: OrchestratorToken | None = None  # liveParams.orchToken
        self._session: OrchestratorSession | None = None
        self._control: trickle.Publisher | None = None  # BYOCStreamPipeline.ControlPub
        self._params: bytes | None = None  # BYOCStreamPipeline.Params: the last update's body
        self._stopped = False
        self._cancelled = asyncio.Event()  # the stream's context
        self._run_task: asyncio.Task[None] | None = None
        self._monitor_task: asyncio.Task[None] | None = None
        self._input_task: asyncio.Task[None] | None = None

    def start(self, input_segments: Sequence[bytes]) -> None:
        self._run_task = asyncio.create_task(self._run(), name=f"gateway stream {self.stream_id}")
        self._monitor_task = asyncio.create_task(self._monitor(), name=f"gateway monitor {self.stream_id}")
        self._input_task = asyncio.create_task(self._pump_input(input_segments), name=f"input {self.stream_id}")

    # -- what a caller reads -------------------------------------------------------------------------------

    @property
    def orchestrator(self) -> str | None:
        """The service address of the orchestrator the stream runs at now."""
        return self._current.service_addr if self._current is not None else None

    @property
    def input_done(self) -> bool:
        """Every input segment has been sent (or the stream ended first)."""
        return self._input_task is not None and self._input_task.done()

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.record.events

    @property
    def output_segments(self) -> int:
        return self.record.output_segments

    @property
    def data_lines(self) -> list[str]:
        return self.record.data.items

    def read_data(self) -> AsyncIterator[str]:
        """Every data line (``-data``, each line of each segment), then new ones, until the stream ends."""
        return self.record.data.follow()

    async def ended(self) -> StreamEnd:
        """Wait until the stream ended and its stops were sent."""
        tasks = {t for t in (self._run_task, self._monitor_task) if t is not None}
        await asyncio.wait(tasks)
        assert self.end is not None
        return self.end

    # -- what a caller does --------------------------------------------------------------------------------

    async def update(self, params: dict[str, Any]) -> Reply:
        """``UpdateStream``: the orchestrator's reply (400 with the error when no token could be had)."""
        token = self._current
        if token is None:
            return Reply(400, b"no orchestrator")
        try:
            fresh = await get_token(self._http, token.service_addr, self.capability, self._timings.token_timeout)
        except OrchestratorError as exc:
            return Reply(400, str(exc).encode())
        data = json.dumps(params).encode()
        self._params = data
        job = JobRequest(self.capability, self._details(), "{}", timeout_seconds=self._start_job.timeout_seconds)
        try:
            reply = await send_job(self._http, fresh, "/ai/stream/update", job, data)
        except OrchestratorError as exc:
            return Reply(400, str(exc).encode())
        return Reply(reply.status, reply.body)

    async def stop(self, body: bytes = b"") -> Reply | None:
        """``StopStream``: the current orchestrator's answer to the stop (None: none, or the stream had ended),
        once the stream has ended here."""
        if self.end is not None:
            return None
        token = self._current
        reply = await self._stop_at(token, body) if token is not None else None
        self._stopped = True
        await self._stop_pipeline()
        await self.ended()
        return reply

    # -- runStream -----------------------------------------------------------------------------------------

    async def _run(self) -> None:
        kind: EndKind = "exhausted"
        reason = ""
        first_processed, swaps, last_swap = False, 0, time.monotonic()
        try:
            for listed in self._orchestrators:
                if self._cancelled.is_set():
                    kind = "stopped"
                    break
                token = await self._refresh(listed) if first_processed else listed
                self._current = token
                attempt = Attempt(token.service_addr)
                self.attempts.append(attempt)
                try:
                    reply = await send_job(self._http, token, "/ai/stream/start", self._start_job, self._start_body)
                except OrchestratorError as exc:
                    log.info("stream %s not started: %s", self.stream_id, exc)
                    continue
                attempt.status, attempt.body = reply.status, reply.body
                try:
                    urls = ChannelUrls.from_reply(reply.headers, token.service_addr)
                except ValueError as exc:
                    kind, reason = "invalid_urls", str(exc)
                    attempt.end_reason = reason
                    break
                reason = attempt.end_reason = await self._run_session(token, urls)
                await self._stop_at(token, reason.encode())
                self._current = None
                if self._stopped:
                    kind = "stopped"
                    break
                if first_processed and swaps > MAX_SWAPS and time.monotonic() - last_swap < self._timings.swap_window:
                    kind = "swap_limit"
                    break
                if first_processed:
                    last_swap, swaps = time.monotonic(), swaps + 1
                else:
                    first_processed = True
                log.info("stream %s leaves %s: %s", self.stream_id, token.service_addr, reason)
        finally:
            if self._input_task is not None:
                self._input_task.cancel()
            await self._stop_pipeline()
            self.end = StreamEnd(kind, reason)
            self.record.data.close()
            log.info("stream %s ended (%s): %s", self.stream_id, kind, reason)

    async def _run_session(self, token: OrchestratorToken, urls: ChannelUrls) -> str:
        """``startStreamProcessing``, then until the session ends; why it ended."""
        session = OrchestratorSession(self._http, token.service_addr, urls, self.record, self._timings, self._params)
        previous, self._control = self._control, session.control
        if previous is not None:
            await previous.close()  # "clean up from existing orchestrator": its control channel is closed
        self._session = session
        if self._cancelled.is_set():
            session.stop_processing(CANCELLED)
        try:
            return await session.run(self._data_output)
        finally:
            self._session = None

    async def _refresh(self, token: OrchestratorToken) -> OrchestratorToken:
        """``refreshToken``: a fresh token, or the old one when none comes."""
        try:
            return await get_token(self._http, token.service_addr, self.capability, self._timings.token_timeout)
        except OrchestratorError as exc:
            log.info("token refresh failed, keeping the old one: %s", exc)
            return token

    async def _stop_pipeline(self) -> None:
        """``stopStreamPipeline``: close the control channel, cancel the stream (its session ends)."""
        control, self._control = self._control, None
        if control is not None:
            await control.close()
        self._cancelled.set()
        if self._session is not None:
            self._session.stop_processing(CANCELLED)

    async def _monitor(self) -> None:
        """``monitorStream``: once the stream is cancelled, stop it at the orchestrator still current."""
        await self._cancelled.wait()
        token = self._current
        if token is not None:
            await self._stop_at(token, STREAM_ENDED)

    def _details(self) -> str:
        return json.dumps({"stream_id": self.stream_id}, separators=(",", ":"))

    async def _stop_at(self, token: OrchestratorToken, body: bytes) -> Reply | None:
        """``sendStopStreamToOrch``; None when no 200 came back."""
        job = JobRequest(self.capability, self._details(), timeout_seconds=STOP_JOB_TIMEOUT)
        try:
            fresh = await get_token(self._http, token.service_addr, self.capability, self._timings.token_timeout)
            reply = await send_job(self._http, fresh, "/ai/stream/stop", job, body)
        except OrchestratorError as exc:
            log.info("stop of %s at %s failed: %s", self.stream_id, token.service_addr, exc)
            return None
        return Reply(reply.status, reply.body) if reply.status == 200 else None

    # -- input ---------------------------------------------------------------------------------------------

    async def _pump_input(self, segments: Sequence[bytes]) -> None:
        for pieces in paced(segments, time.monotonic()):
            session = self._session
            if session is not None:
                await session.write_input(pieces)
            await asyncio.sleep(max(0.0, pieces[-1].due - time.monotonic()))


class Gateway:
    """Starts streams at a fixed list of orchestrators (``-orchAddr``), off-chain; TLS is not verified."""

    def __init__(self, orchestrators: Sequence[str], timings: GatewayTimings | None = None) -> None:
        self.orchestrators = list(orchestrators)
        self.timings = timings or GatewayTimings()
        self.streams: dict[str, GatewayStream] = {}
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Gateway:
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop every stream still running, then close the connections."""
        await asyncio.gather(*(s.stop() for s in self.streams.values() if s.end is None))
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def start_stream(
        self,
        capability: str,
        *,
        params: dict[str, Any] | None = None,
        stream_id: str | None = None,
        stream_name: str = "",
        input_segments: Sequence[bytes] = (),
        video_ingress: bool = True,
        video_egress: bool = True,
        data_output: bool = False,
        timeout_seconds: int = 30,
        keep_output: bool = False,
    ) -> GatewayStream:
        """Start a stream (see the module docstring); ``keep_output`` keeps the output segments' bytes."""
        assert self._http is not None, "use the gateway as an async context manager"
        sid = stream_id or secrets.token_hex(8)  # core.RandomManifestID
        if stream_name:
            sid = f"{stream_name}-{sid}"
        tokens = await find_orchestrators(
            self._http,
            self.orchestrators,
            capability,
            self.timings.orch_search_timeout,
            self.timings.orch_response_timeout,
        )
        if not tokens:
            raise NoOrchestrators(f"No orchestrators found for capability {capability}")
        running = self.streams.get(sid)
        if running is not None and running.end is None:
            raise StreamExists(f"stream already exists: {sid}")
        flags = {
            "enable_video_ingress": video_ingress,
            "enable_video_egress": video_egress,
            "enable_data_output": data_output,
        }
        job = JobRequest(
            capability,
            json.dumps({"stream_id": sid}, separators=(",", ":")),
            json.dumps(flags, separators=(",", ":")),
            id=sid,
            timeout_seconds=timeout_seconds,
            search_timeout=self.timings.orch_search_timeout,
            response_timeout=self.timings.orch_response_timeout,
        )
        body = json.dumps({"params": params}).encode()
        stream = GatewayStream(self._http, sid, capability, tokens, job, body, self.timings, data_output, keep_output)
        self.streams[sid] = stream
        stream.start(input_segments)
        return stream
