"""Shared helpers for the runtime tests: a worker on a real HTTP port, and a stream harness that plays the
gateway/orchestrator side against a real trickle server."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
import numpy as np
from aiohttp.test_utils import TestServer
from byoc_runtime import trickle
from byoc_runtime.api.server import create_app
from byoc_runtime.config import RuntimeConfig
from byoc_runtime.processors.loader import resolve_processor
from byoc_runtime.processors.pool import ProcessorPool
from byoc_runtime.worker import Worker

_ids = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


@dataclass
class RunningWorker:
    worker: Worker
    base_url: str
    http: aiohttp.ClientSession

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        async with self.http.get(self.base_url + path, **kw) as resp:
            return resp.status, await _body(resp)

    async def post(self, path: str, **kw: Any) -> tuple[int, Any]:
        async with self.http.post(self.base_url + path, **kw) as resp:
            return resp.status, await _body(resp)

    async def wait_health(self, status: str, limit_s: float = 30.0) -> None:
        async with asyncio.timeout(limit_s):
            while (await self.get("/health"))[1]["status"] != status:  # noqa: ASYNC110 (polling HTTP)
                await asyncio.sleep(0.05)


async def _body(resp: aiohttp.ClientResponse) -> Any:
    if resp.content_type == "application/json":
        return await resp.json()
    return await resp.text()


@contextlib.asynccontextmanager
async def running_worker(
    processor: Any = "passthrough", capacity: int = 1, listen: str = "127.0.0.1", **config: Any
) -> AsyncIterator[RunningWorker]:
    """A worker behind a real aiohttp server on ``listen`` (127.0.0.1). ``processor`` is a spec or a factory."""
    cfg = RuntimeConfig(capacity=capacity, heartbeat_interval=config.pop("heartbeat_interval", 1.0), **config)
    factory = resolve_processor(processor) if isinstance(processor, str) else processor
    worker = Worker(cfg, ProcessorPool(factory, capacity, cfg.params))
    server = TestServer(create_app(worker), host=listen)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield RunningWorker(worker, str(server.make_url("")).rstrip("/"), http)
    finally:
        await server.close()


def stop_reasons(events: list[dict[str, Any]]) -> list[str]:
    """Why the worker said a stream stopped, one per stream_stopped event."""
    return [e["event"].get("reason") for e in events if e.get("event", {}).get("type") == "stream_stopped"]


@dataclass
class Stream:
    """The orchestrator's side of one BYOC stream on a real trickle server: channels, input publisher,
    and readers for output, events and data."""

    server: Any
    sid: str
    output: list[bytes] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    data: list[Any] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _http: aiohttp.ClientSession | None = None

    @classmethod
    def create(
        cls, server: Any, prefix: str = "s", channels: tuple[str, ...] = ("", "-out", "-control", "-events", "-data")
    ) -> Stream:
        sid = unique(prefix)
        mimes = {"": "video/mp2t", "-out": "video/mp2t", "-data": "application/jsonl"}
        for suffix in channels:
            server.create_channel(sid + suffix, mimes.get(suffix, "application/json"))
        return cls(server, sid)

    def url(self, suffix: str = "") -> str:
        return self.server.url(self.sid + suffix)

    def start_body(self, params: dict[str, Any] | None = None, **urls: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "gateway_request_id": self.sid,
            "subscribe_url": self.url(""),
            "publish_url": self.url("-out"),
            "control_url": self.url("-control"),
            "events_url": self.url("-events"),
            "data_url": self.url("-data"),
            "params": params or {},
        }
        body.update(urls)
        return body

    def listen(self) -> None:
        """Start reading output segments, events and data in the background."""
        self._http = aiohttp.ClientSession()
        self._tasks = [
            asyncio.create_task(self._read_output()),
            asyncio.create_task(self._read_json("-events", self.events)),
            asyncio.create_task(self._read_json("-data", self.data)),
        ]

    async def _read_output(self) -> None:
        with contextlib.suppress(trickle.TrickleError):
            async with trickle.Subscriber(self.url("-out"), session=self._http) as sub:
                async for segment in sub:
                    with contextlib.suppress(trickle.SegmentError):
                        self.output.append(await segment.read())

    async def _read_json(self, suffix: str, into: list[Any]) -> None:
        with contextlib.suppress(trickle.TrickleError):
            async with trickle.JsonSubscriber(self.url(suffix), session=self._http) as sub:
                async for message in sub:
                    into.append(message)

    async def wait_output_closed(self, limit_s: float = 20.0) -> None:
        """The worker closed the output itself (it does when it ends a stream on its own: a drain, a failure)."""
        await asyncio.wait_for(asyncio.shield(self._tasks[0]), limit_s)

    async def wait_ended(self, limit_s: float = 20.0) -> None:
        """A natural end: the worker says the stream stopped and leaves the output channel to its owner, so close
        it as the orchestrator does once the stream is over (after the reader has what was published)."""
        async with asyncio.timeout(limit_s):
            while "stream_stopped" not in self.event_types():  # noqa: ASYNC110 (polling what the reader got)
                await asyncio.sleep(0.05)
            seen = -1
            while seen != len(self.output):  # the last segment's bytes may still be on their way
                seen = len(self.output)
                await asyncio.sleep(0.5)
        self.server.delete_channel(self.sid + "-out")
        await asyncio.wait_for(asyncio.shield(self._tasks[0]), limit_s)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    def event_types(self) -> list[str]:
        return [e.get("event", {}).get("type") for e in self.events]

    def stop_reasons(self) -> list[str]:
        return stop_reasons(self.events)


async def publish(
    url: str,
    segments: list[bytes],
    segment_seconds: float = 1.0,
    paced: bool = True,
    close: bool = True,
    chunks: int = 10,
) -> None:
    """Publish segments as a gateway would: each one streamed over its duration (``paced``) or at once."""
    http = aiohttp.ClientSession()
    publisher = trickle.Publisher(url, session=http)
    try:
        for data in segments:
            if not paced:
                await publisher.write_segment(data)
                continue
            step = max(1, len(data) // chunks)
            async with publisher.segment() as writer:
                for offset in range(0, len(data), step):
                    await writer.write(data[offset : offset + step])
                    await asyncio.sleep(segment_seconds / chunks)
    finally:
        await publisher.close(delete=close)
        await http.close()


@dataclass
class Decoded:
    video: list[tuple[float, np.ndarray]]  # (seconds, rgb)
    audio: list[tuple[float, np.ndarray]]  # (seconds, float32 mono samples)
    video_codecs: set[str]
    audio_codecs: set[str]
    audio_rate: int = 48000
    keyframe_first: list[bool] = field(default_factory=list)


def decode_segments(segments: list[bytes]) -> Decoded:
    """Decode each output segment on its own, as a late-joining player would."""
    out = Decoded([], [], set(), set())
    for data in segments:
        container = av.open(io.BytesIO(data), format="mpegts")
        out.video_codecs.update(s.codec_context.name for s in container.streams.video)
        out.audio_codecs.update(s.codec_context.name for s in container.streams.audio)
        first = True
        for packet in container.demux():
            if packet.stream.type == "video" and packet.size and first:
                out.keyframe_first.append(packet.is_keyframe)
                first = False
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    out.video.append((float(frame.time), frame.to_ndarray(format="rgb24")))
                elif isinstance(frame, av.AudioFrame):
                    out.audio_rate = frame.sample_rate
                    samples = frame.to_ndarray().astype(np.float32)
                    out.audio.append(
                        (
                            float(frame.time),
                            samples.reshape(frame.layout.nb_channels, -1)[0]
                            if frame.format.is_planar
                            else samples.reshape(-1, frame.layout.nb_channels)[:, 0],
                        )
                    )
        container.close()
    return out


def flash_times(decoded: Decoded) -> list[float]:
    """Times of the source's white flash frames (first of each run)."""
    times, before = [], False
    for t, image in decoded.video:
        white = image.mean() > 200
        if white and not before:
            times.append(t)
        before = white
    return times


def beep_onsets(decoded: Decoded, threshold: float = 0.1) -> list[float]:
    """Times where the source's beep starts."""
    onsets, loud_before = [], False
    for start, samples in decoded.audio:
        loud = bool(np.abs(samples).max() > threshold)
        if loud and not loud_before:
            onset = start + int(np.argmax(np.abs(samples) > threshold)) / decoded.audio_rate
            # A beep spanning a segment boundary can dip below the threshold while the next segment's Opus
            # decoder (cold: each segment is decoded on its own) ramps up; that is not a new beep.
            if not onsets or onset - onsets[-1] > 0.1:
                onsets.append(onset)
        loud_before = loud
    return onsets
