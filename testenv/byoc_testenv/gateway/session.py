"""One orchestrator's part of a gateway stream: its trickle channels, and the watchdogs that end it.

Follows go-livepeer ``byoc/trickle.go`` as ``byoc/stream_gateway.go`` ``startStreamProcessing`` wires it, after
the orchestrator's start reply named the channels (``X-*-Url``, made absolute with ``common.AppendHostname``):
- input (``startTricklePublish``): each input segment is written to the orchestrator's input channel; the time a
  segment starts is the stream's "last input". A channel that is gone ends the session.
- output (``startTrickleSubscribe``): segments read from ``-out``; its end (EOS or 404), a broken subscription, or
  a segment that breaks while input is recent ends the session. Its watchdog (``segmentTicker``, reset before
  each read) ends it when no segment came for the output timeout while input started in the last half of it.
- data (``startDataSubscribe``): each line of each ``-data`` segment is kept; the channel's end ends the session.
- control (``startControlPublish``): the cached params update (if any) is written first, 3 tries 100 ms apart
  (failing ends the session); then ``{"keep":"alive"}`` every keepalive interval (a gone channel ends it).
- events (``startEventsSubscribe``): each segment is an event or a ``{"queue_event_type","event"}`` envelope.
  Every check interval, no event for longer than the maximum gap ends the session; the channel's end only stops
  reading (and the watchdog with it).

All subscriptions start at the next segment (seq -1), as upstream's ``TrickleSubscriber``. A session ends once,
with the first reason given (``stopProcessing``, a ``context.WithCancelCause``); the stream then stops it at the
orchestrator and moves on (``stream.py``). Not done: the "slow orchestrator" check on input (upstream: more than
3 input segments in flight), payments, and the RTMP/WHEP outputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from byoc_runtime import trickle
from byoc_runtime.trickle import SEQ_NEXT, ChannelClosed, SegmentError, TrickleError
from multidict import CIMultiDictProxy

from .record import StreamRecord
from .timings import GatewayTimings

log = logging.getLogger(__name__)

KEEPALIVE = b'{"keep":"alive"}'
CONTROL_TRIES, CONTROL_RETRY_PAUSE = 3, 0.1

# Why a session ends: upstream's error texts (the reason is also the body of the stop sent to the orchestrator).
CANCELLED = "context canceled"
EVENTS_TIMEOUT = "timeout waiting for events"
EVENTS_FAILED = "too many errors reading events; stopping subscription"
OUTPUT_TIMEOUT = "timeout waiting for segments"
OUTPUT_ENDED = "trickle subscribe stopping, stream not found"
OUTPUT_FAILED = "trickle subscribe stopping, retries exceeded"
OUTPUT_BROKEN = "trickle subscribe error, swapping"
DATA_ENDED = "data subscribe stopping, stream not found"
DATA_FAILED = "data subscribe stopping, retries exceeded"
CONTROL_GONE = "control channel does not exist"
CONTROL_WRITE_FAILED = "control write failed"
INPUT_GONE = "stream no longer exists on orchestrator; terminating"


def absolute(url: str, orchestrator: str, what: str) -> str:
    """``common.AppendHostname``: a URL with a host is kept, a path is put on the orchestrator's address; an
    empty one is an error (``ValueError``, "invalid <what> URL")."""
    if not url:
        raise ValueError(f"invalid {what} URL: invalid url from orch")
    if urlsplit(url).hostname:
        return url
    return orchestrator.rstrip("/") + ("" if url.startswith("/") else "/") + url


@dataclass(frozen=True)
class ChannelUrls:
    """``orchTrickleUrls``: the start reply's headers, absolute; "" for a channel the reply did not name."""

    publish: str
    subscribe: str
    data: str
    control: str
    events: str

    @classmethod
    def from_reply(cls, headers: CIMultiDictProxy[str], orchestrator: str) -> ChannelUrls:
        """``ValueError`` when control or events is missing (``startStreamProcessing`` fails: no swap)."""

        def optional(name: str, what: str) -> str:
            value = headers.get(name, "")
            return absolute(value, orchestrator, what) if value else ""

        return cls(
            publish=optional("X-Publish-Url", "publish"),
            subscribe=optional("X-Subscribe-Url", "subscribe"),
            data=optional("X-Data-Url", "data"),
            control=absolute(headers.get("X-Control-Url", ""), orchestrator, "control"),
            events=absolute(headers.get("X-Events-Url", ""), orchestrator, "events"),
        )


@dataclass(frozen=True)
class TimedPiece:
    """Bytes of an input segment and when (``time.monotonic()``) they are due on the wire."""

    due: float
    data: bytes


def parse_event(body: bytes) -> dict[str, Any] | None:
    """The event of one events segment: the envelope's ``event``, else the body itself; None to skip it."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    inner = data.get("event")
    if inner is None:
        return data
    return inner if isinstance(inner, dict) else None


def scan_lines(data: bytes) -> list[str]:
    """``bufio.ScanLines``: split at ``\\n``, a trailing ``\\r`` dropped, no empty token after the last newline."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [line.removesuffix(b"\r").decode(errors="replace") for line in lines]


class OrchestratorSession:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        orchestrator: str,
        urls: ChannelUrls,
        record: StreamRecord,
        timings: GatewayTimings,
        cached_params: bytes | None,
    ) -> None:
        self.http = http
        self.orchestrator = orchestrator
        self.urls = urls
        self.record = record
        self.timings = timings
        self.cached_params = cached_params
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.input = trickle.Publisher(urls.publish, "video/mp2t", http) if urls.publish else None
        self.control = trickle.Publisher(urls.control, "application/json", http)
        self._output_reset = time.monotonic()
        self._last_event = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []

    def stop_processing(self, reason: str) -> None:
        """``stopProcessing``: end the session; only the first reason counts."""
        if not self.ended.done():
            log.info("session at %s ends: %s", self.orchestrator, reason)
            self.ended.set_result(reason)

    async def run(self, data_output: bool) -> str:
        """Start every channel's work, wait for the session to end, then stop it all; the reason it ended."""
        work: list[Callable[[], Coroutine[Any, Any, None]]] = []
        if self.urls.subscribe:
            work += [self._read_output, self._output_watchdog]
        if self.urls.data and data_output:  # startDataSubscribe runs only with a data writer (data output on)
            work.append(self._read_data)
        work += [self._replay_params, self._keepalive, self._events]
        self._tasks = [asyncio.create_task(job()) for job in work]
        try:
            return await asyncio.shield(self.ended)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self.input is not None:
                await self.input.close(delete=False)  # the orchestrator owns the channel

    # -- input ---------------------------------------------------------------------------------------------

    async def write_input(self, pieces: Sequence[TimedPiece]) -> None:
        """One input segment, each piece written when due (a live segmenter's pace)."""
        if self.input is None or self.ended.done():
            return
        self.record.last_input = time.monotonic()
        try:
            async with self.input.segment() as writer:
                for piece in pieces:
                    await asyncio.sleep(max(0.0, piece.due - time.monotonic()))
                    await writer.write(piece.data)
        except ChannelClosed:
            self.stop_processing(INPUT_GONE)
        except TrickleError as exc:
            log.info("input segment dropped: %s", exc)  # "Error publishing segment; dropping remainder"

    # -- output --------------------------------------------------------------------------------------------

    async def _read_output(self) -> None:
        limit = self.timings.output_segment_timeout
        try:
            async with trickle.Subscriber(self.urls.subscribe, self.http, start_seq=SEQ_NEXT) as subscriber:
                while True:
                    self._output_reset = time.monotonic()
                    segment = await subscriber.next()
                    if segment is None:
                        self.stop_processing(OUTPUT_ENDED)
                        return
                    try:
                        async with asyncio.timeout(limit):  # copySegment's timeout
                            data = await segment.read()
                    except (SegmentError, TimeoutError) as exc:
                        if self.record.input_within(limit / 2):
                            self.stop_processing(f"{OUTPUT_BROKEN}: {exc!r}")
                            return
                        continue
                    self.record.add_output(data)
        except TrickleError:
            self.stop_processing(OUTPUT_FAILED)

    async def _output_watchdog(self) -> None:
        """``segmentTicker``: fires one timeout after the last reset, then every timeout while not reset."""
        limit = self.timings.output_segment_timeout
        tick_from = self._output_reset
        while True:
            start = max(self._output_reset, tick_from)
            await asyncio.sleep(max(0.0, start + limit - time.monotonic()))
            if time.monotonic() - max(self._output_reset, tick_from) < limit:
                continue  # reset meanwhile
            if self.record.input_within(limit / 2):  # no input, no output: that is not the orchestrator's fault
                self.stop_processing(OUTPUT_TIMEOUT)
                return
            tick_from = time.monotonic()

    # -- data ----------------------------------------------------------------------------------------------

    async def _read_data(self) -> None:
        try:
            async with trickle.Subscriber(self.urls.data, self.http, start_seq=SEQ_NEXT) as subscriber:
                async for segment in subscriber:
                    try:
                        data = await segment.read()
                    except SegmentError:
                        continue
                    for line in scan_lines(data):
                        self.record.data.append(line)
            self.stop_processing(DATA_ENDED)
        except TrickleError:
            self.stop_processing(DATA_FAILED)

    # -- control -------------------------------------------------------------------------------------------

    async def _replay_params(self) -> None:
        if self.cached_params is None:
            return
        error: TrickleError | None = None
        for _ in range(CONTROL_TRIES):
            try:
                await self.control.write_segment(self.cached_params)
                return
            except TrickleError as exc:
                error = exc
            await asyncio.sleep(CONTROL_RETRY_PAUSE)
        self.stop_processing(f"{CONTROL_WRITE_FAILED}: {error}")

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.timings.keepalive_interval)
            try:
                await self.control.write_segment(KEEPALIVE)
            except ChannelClosed:
                self.stop_processing(CONTROL_GONE)
                return
            except TrickleError as exc:
                log.info("control keepalive failed, will retry: %s", exc)  # upstream retries on the next tick

    # -- events --------------------------------------------------------------------------------------------

    async def _events(self) -> None:
        """The reader and its heartbeat watchdog; the watchdog stops with the reader."""
        self._last_event = time.monotonic()
        reader = asyncio.create_task(self._read_events())
        watchdog = asyncio.create_task(self._event_watchdog())
        try:
            await asyncio.wait({reader, watchdog}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, watchdog):
                task.cancel()
            await asyncio.gather(reader, watchdog, return_exceptions=True)

    async def _read_events(self) -> None:
        try:
            async with trickle.Subscriber(self.urls.events, self.http, start_seq=SEQ_NEXT) as subscriber:
                async for segment in subscriber:
                    with contextlib.suppress(SegmentError):
                        event = parse_event(await segment.read())
                        if event is not None:
                            self._last_event = time.monotonic()
                            self.record.add_event(event)
        except TrickleError as exc:
            self.stop_processing(f"{EVENTS_FAILED}: {exc}")

    async def _event_watchdog(self) -> None:
        while True:
            await asyncio.sleep(self.timings.event_check_interval)
            if time.monotonic() - self._last_event > self.timings.max_event_gap:
                self.stop_processing(EVENTS_TIMEOUT)
                return
