"""The jitter buffer on its own: a burst of frames comes out at the pace of its timestamps, in order, and goes
early only while the processor waits on a backlog."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import av
import numpy as np
from byoc_runtime.session.items import DecodedVideo
from byoc_runtime.session.pacing import JitterBuffer

FPS = 30


def frame(index: int) -> av.VideoFrame:
    out = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
    out.pts, out.time_base = index, Fraction(1, FPS)
    return out


async def test_a_burst_is_released_at_the_pace_of_its_timestamps_in_order() -> None:
    released: list[tuple[int, float]] = []
    buffer = JitterBuffer(lambda item: released.append((item.frame.pts, time.monotonic())), lambda: False, 0.5)
    # One paced frame, then a whole second of frames at once (a segment delivered in one piece).
    start = time.monotonic()
    buffer.push(DecodedVideo(frame(0), start))
    await asyncio.sleep(0.2)
    burst_at = time.monotonic()
    for index in range(1, FPS + 1):
        buffer.push(DecodedVideo(frame(index), burst_at))
    await buffer.flush()
    assert [pts for pts, _ in released] == list(range(FPS + 1))
    spread = released[-1][1] - released[1][1]
    assert spread > 0.5  # ~1 s of timestamps is not handed on at once


async def test_catch_up_hands_on_one_frame_while_a_backlog_is_held_and_the_processor_waits() -> None:
    released: list[int] = []
    wanted = False
    buffer = JitterBuffer(lambda item: released.append(item.frame.pts), lambda: wanted, 0.5)
    now = time.monotonic()
    for index in range(2 * FPS):  # two seconds ahead of real time
        buffer.push(DecodedVideo(frame(index), now))
    held_before = len(released)
    buffer.catch_up()
    assert len(released) == held_before  # the processor is busy: nothing goes early
    wanted = True
    buffer.catch_up()
    assert released == list(range(held_before + 1))  # one frame, the oldest held
