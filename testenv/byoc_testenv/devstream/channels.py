"""A stream's trickle channels from the client side: real-time input, the output and events read back."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .mpegts import PTS_HZ, FramePiece, VideoTimeline

CHANNEL_SUFFIXES = {
    "": "video/mp2t",
    "-out": "video/mp2t",
    "-control": "application/json",
    "-events": "application/json",
    "-data": "application/jsonl",
}


@dataclass
class InputLog:
    """What was published: when each segment started and when each frame was complete on the wire."""

    segment_start: list[float] = field(default_factory=list)
    segment_of: dict[int, int] = field(default_factory=dict)  # pts -> segment index
    frame_sent: dict[int, float] = field(default_factory=dict)  # pts -> time


async def publish_paced(
    url: str,
    segments: Sequence[Sequence[FramePiece]],
    log: InputLog,
    *,
    t0: float | None = None,
    close: bool = True,
    session: Any = None,
) -> None:
    """Publish pre-split segments in real time: frame k's bytes at ``t0 + (pts_k - pts_0) / 90 kHz``.

    One streaming POST per segment, as a gateway's segmenter writes them. ``close`` deletes the channel at the
    end, which tells the worker the input is over.
    """
    import byoc_runtime.trickle as trickle

    first = next((s[0].pts for s in segments if s), 0)
    start = time.monotonic() if t0 is None else t0
    publisher = trickle.Publisher(url, mime_type="video/mp2t", session=session)
    try:
        for index, pieces in enumerate(segments):
            if not pieces:
                continue
            async with publisher.segment() as writer:
                for k, piece in enumerate(pieces):
                    due = start + (piece.pts - first) / PTS_HZ
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    if k == 0:
                        log.segment_start.append(time.monotonic())
                    await writer.write(piece.data)
                    log.frame_sent[piece.pts] = time.monotonic()
                    log.segment_of[piece.pts] = index
    finally:
        await publisher.close(delete=close)


# -- output: reading it back ---------------------------------------------------------------------------------


@dataclass
class OutputLog:
    frame_published: dict[int, float] = field(default_factory=dict)  # pts -> arrival of its last byte
    segments: list[bytes] = field(default_factory=list)  # kept only when asked
    first_byte: float | None = None
    ended: bool = False
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # set whenever frames complete


async def read_output(
    url: str,
    log: OutputLog,
    *,
    keep: bool = False,
    on_frames: Callable[[list[tuple[int, float]]], None] | None = None,
    session: Any = None,
) -> None:
    """Read a media channel until it ends, timing every video frame (``VideoTimeline``)."""
    import byoc_runtime.trickle as trickle

    timeline = VideoTimeline()
    with contextlib.suppress(trickle.TrickleError):
        async with trickle.Subscriber(url, session) as subscriber:
            async for segment in subscriber:
                body = bytearray() if keep else None
                done: list[tuple[int, float]] = []
                try:
                    async for chunk in segment.iter_chunks():
                        now = time.monotonic()
                        if log.first_byte is None:
                            log.first_byte = now
                        done += timeline.feed(chunk, now)
                        if body is not None:
                            body += chunk
                        if done:
                            _record(log, done, on_frames)
                            done = []
                except trickle.SegmentError:
                    pass
                _record(log, timeline.end(), on_frames)
                if body is not None:
                    log.segments.append(bytes(body))
    log.ended = True


def _record(
    log: OutputLog, frames: list[tuple[int, float]], on_frames: Callable[[list[tuple[int, float]]], None] | None
) -> None:
    for pts, t in frames:
        log.frame_published.setdefault(pts, t)
    if frames:
        log.arrived.set()
    if on_frames is not None and frames:
        on_frames(frames)


async def wait_output(out: OutputLog, done: Callable[[], bool], quiet: float) -> bool:
    """Wait until ``done()`` holds (checked whenever output frames arrive) or no frame arrives for ``quiet``
    seconds; returns ``done()``."""
    while not done():
        out.arrived.clear()
        try:
            await asyncio.wait_for(out.arrived.wait(), quiet)
        except TimeoutError:
            return done()
    return True


async def wait_caught_up(sent: InputLog, out: OutputLog, quiet: float = 3.0) -> bool:
    """After the input ended: until the last input frame is out, or the output stays quiet for ``quiet`` s."""
    last = max(sent.frame_sent, default=None)
    return await wait_output(out, lambda: last is None or last in out.frame_published, quiet)


async def read_events(url: str, into: list[Any], session: Any = None) -> None:
    import byoc_runtime.trickle as trickle

    with contextlib.suppress(trickle.TrickleError):
        async with trickle.JsonSubscriber(url, session) as subscriber:
            async for message in subscriber:
                into.append(message)


def event_type(message: Any) -> str:
    if isinstance(message, dict):
        inner = message.get("event", message)
        if isinstance(inner, dict) and inner.get("type"):
            return str(inner["type"])
    return "unknown"
