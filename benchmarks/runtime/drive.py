"""Driving worker sessions the way an orchestrator does, over a real trickle server.

Throughput (closed loop): each session's input segments are published whole, as fast as the output allows:
segment n goes out once the frames of segments 0..n-K (K = ``IN_FLIGHT``) have come out, so the worker always
has work queued but never so much that a bounded queue or the server's 5-segment window drops any.
fps = output frames completed inside the measured window / window length.

Latency (real time): each session's input is published at the pace of its timestamps, each frame's bytes when
the frame is due (``channels.publish_paced``); sessions are staggered evenly over one second so their segment
starts do not coincide. Output frames are timed by ``mpegts.VideoTimeline`` as their bytes arrive at a
subscriber and matched to input frames by PTS (both workers keep input timestamps).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from byoc_runtime import trickle
from byoc_testenv.devstream.channels import (
    CHANNEL_SUFFIXES,
    InputLog,
    OutputLog,
    publish_paced,
    read_output,
    wait_caught_up,
)
from byoc_testenv.devstream.latency import match_frames
from byoc_testenv.devstream.worker import http_json
from byoc_testenv.trickle import TrickleServer

from .measurement import Measurement
from .source import Clip
from .workers import Workers

IN_FLIGHT = 2  # segments (seconds of video) published but not yet out, per session
MAX_FRAMERATE = 60  # both workers cap input at 24 fps by default; 60 lets all 30 fps through
QUIET_S = 1.0  # closed loop: output quiet this long -> frames still missing are taken as dropped
SETTLE_S = 0.7  # after /stream/start, before the first input byte: the worker subscribes


@dataclass
class Stream:
    """One session's channels on the trickle server and its start/stop calls."""

    server: TrickleServer
    worker_url: str
    sid: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:10]}")

    def url(self, suffix: str = "") -> str:
        return self.server.url(self.sid + suffix)

    def create(self) -> None:
        for suffix, mime in CHANNEL_SUFFIXES.items():
            self.server.create_channel(self.sid + suffix, mime)

    def delete(self) -> None:
        for suffix in CHANNEL_SUFFIXES:
            with contextlib.suppress(OSError):
                self.server.delete_channel(self.sid + suffix)

    async def start(self, width: int, height: int) -> None:
        body = {
            "gateway_request_id": self.sid,
            "subscribe_url": self.url(),
            "publish_url": self.url("-out"),
            "control_url": self.url("-control"),
            "events_url": self.url("-events"),
            "data_url": self.url("-data"),
            "params": {"width": width, "height": height, "max_framerate": MAX_FRAMERATE},
        }
        status, reply = await asyncio.to_thread(
            http_json, "POST", self.worker_url + "/stream/start", body, {"X-Stream-Id": self.sid}
        )
        if status != 200:
            raise RuntimeError(f"/stream/start on {self.worker_url} answered {status}: {reply}")

    async def stop(self) -> None:
        await asyncio.to_thread(http_json, "POST", self.worker_url + "/stream/stop", {}, {"X-Stream-Id": self.sid})


@dataclass
class Progress:
    """The output side of one closed-loop session."""

    times: list[float] = field(default_factory=list)  # completion time of every output frame
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_frames(self, frames: list[tuple[int, float]]) -> None:
        self.times.extend(t for _, t in frames)
        self.changed.set()


async def _closed_loop_session(
    stream: Stream, clip: Clip, stop_at: float, progress: Progress, sent: list[int], http: aiohttp.ClientSession
) -> None:  # sent: [frames published, frames written off]
    """Segment n goes out once as many frames came out as segments 0..n-K hold. Progress is counted in frames,
    not read from output timestamps, so a worker that re-times or drops frames cannot make the loop run ahead;
    frames it dropped are written off when its output stays quiet for ``QUIET_S``."""
    out = OutputLog()
    reader = asyncio.create_task(read_output(stream.url("-out"), out, on_frames=progress.on_frames, session=http))
    publisher = trickle.Publisher(stream.url(), mime_type="video/mp2t", session=http)
    written_off = 0
    try:
        await stream.start(clip.width, clip.height)
        await asyncio.sleep(SETTLE_S)
        for n, segment in enumerate(clip.segments):
            need = clip.frames_before(n - IN_FLIGHT + 1) if n >= IN_FLIGHT else 0
            while len(progress.times) + written_off < need:
                left = stop_at - time.monotonic()
                if left <= 0:
                    return
                progress.changed.clear()
                try:
                    await asyncio.wait_for(progress.changed.wait(), min(left, QUIET_S))
                except TimeoutError:
                    if time.monotonic() < stop_at:
                        sent[1] += need - len(progress.times) - written_off
                        written_off = need - len(progress.times)
            if time.monotonic() >= stop_at:
                return
            await publisher.write_segment(segment)
            sent[0] += len(clip.pieces[n])
        raise RuntimeError(f"input ran out ({len(clip.segments)} s) before the window ended; lengthen the clip")
    finally:
        await stream.stop()
        await publisher.close(delete=False)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def throughput(
    workers: Workers, server: TrickleServer, clip: Clip, sessions: int, warmup: float, window: float
) -> Measurement:
    """Closed-loop saturating load on ``sessions`` concurrent sessions; fps over ``window`` after ``warmup``."""
    m = Measurement(workers.name, "throughput", clip.name, sessions, seconds=window)
    streams = [Stream(server, workers.url(i)) for i in range(sessions)]
    progress = [Progress() for _ in streams]
    sent = [[0, 0] for _ in streams]
    for stream in streams:
        stream.create()
    begin = time.monotonic()
    window_start, stop_at = begin + SETTLE_S + warmup, begin + SETTLE_S + warmup + window
    async with aiohttp.ClientSession() as http:
        tasks = [
            asyncio.create_task(_closed_loop_session(s, clip, stop_at, p, c, http))
            for s, p, c in zip(streams, progress, sent, strict=True)
        ]
        cpu_at_start = await _at(window_start, workers.cpu_seconds)
        stages_at_start = await asyncio.to_thread(workers.metrics)
        cpu_at_end = await _at(stop_at, workers.cpu_seconds)
        stages_at_end = await asyncio.to_thread(workers.metrics)
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for stream in streams:
        stream.delete()
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    m.error = "; ".join(errors) or None
    m.cpu_seconds = cpu_at_end - cpu_at_start
    m.set_metrics(stages_at_start, stages_at_end)
    counts = [sum(1 for t in p.times if window_start <= t < stop_at) for p in progress]
    m.frames_out = sum(counts)
    m.frames_in = sum(c[0] for c in sent)
    m.written_off = sum(c[1] for c in sent)
    m.fps = m.frames_out / window
    m.fps_per_session = [c / window for c in counts]
    return m


async def _at(when: float, sample: Callable[[], float]) -> float:
    await asyncio.sleep(max(0.0, when - time.monotonic()))
    return sample()


async def _paced_session(
    stream: Stream, clip: Clip, seconds: int, t0: float, sent: InputLog, out: OutputLog, http: aiohttp.ClientSession
) -> None:
    reader = asyncio.create_task(read_output(stream.url("-out"), out, session=http))
    try:
        await stream.start(clip.width, clip.height)
        await publish_paced(stream.url(), clip.pieces[:seconds], sent, t0=t0, close=False, session=http)
        await wait_caught_up(sent, out)
    finally:
        await stream.stop()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def latency(
    workers: Workers,
    server: TrickleServer,
    clip: Clip,
    sessions: int,
    seconds: int,
    skip: float,
    logs: list[tuple[InputLog, OutputLog]] | None = None,
) -> Measurement:
    """Real-time input on ``sessions`` sessions for ``seconds``; latency over frames after the first ``skip`` s.
    ``logs`` gets each session's input and output log."""
    m = Measurement(workers.name, "latency", clip.name, sessions, seconds=float(seconds))
    streams = [Stream(server, workers.url(i)) for i in range(sessions)]
    sent = [InputLog() for _ in streams]
    outs = [OutputLog() for _ in streams]
    for stream in streams:
        stream.create()
    t0 = time.monotonic() + SETTLE_S + 0.5
    cpu_before, stages_before = workers.cpu_seconds(), await asyncio.to_thread(workers.metrics)
    async with aiohttp.ClientSession() as http:
        results = await asyncio.gather(
            *(
                _paced_session(s, clip, seconds, t0 + i / sessions, sent[i], outs[i], http)
                for i, s in enumerate(streams)
            ),
            return_exceptions=True,
        )
    m.cpu_seconds = workers.cpu_seconds() - cpu_before
    m.set_metrics(stages_before, await asyncio.to_thread(workers.metrics))
    for stream in streams:
        stream.delete()
    m.error = "; ".join(repr(r) for r in results if isinstance(r, BaseException)) or None
    summarize_latency(m, sent, outs, skip)
    if logs is not None:
        logs.extend(zip(sent, outs, strict=True))
    return m


def summarize_latency(m: Measurement, sent: list[InputLog], outs: list[OutputLog], skip: float) -> None:
    from_segment: list[float] = []
    added: list[float] = []
    firsts: list[float] = []
    for s, o in zip(sent, outs, strict=True):
        m.frames_in += len(s.frame_sent)
        m.frames_out += len(o.frame_published)
        m.fps_per_session.append(len(o.frame_published) / m.seconds)
        if not s.frame_sent:
            continue
        first_pts = min(s.frame_sent)
        if o.frame_published:
            firsts.append(min(o.frame_published.values()) - s.segment_start[0])
        for frame in match_frames(s, o):
            if (frame.pts - first_pts) / 90_000 >= skip:
                from_segment.append(frame.from_segment)
                added.append(frame.from_frame)
    m.fps = m.frames_out / m.seconds
    m.first_output_s = max(firsts) if firsts else None
    m.set_latency(from_segment, added)
