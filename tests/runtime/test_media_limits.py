"""Untrusted media gets bounded work: input frames over the pixel cap, codecs outside the allow-list and oversized
segments end the stream with an error event before the worker spends memory on them (security review H5, M11)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from byoc_runtime.media.decode import SegmentReader
from byoc_runtime.processors.builtin import PassthroughProcessor

from .crafted_media import announced_size_segment, mpeg2_segment
from .support import Stream, publish, running_worker

pytestmark = pytest.mark.trickle

SMALL = {"width": 64, "height": 64}


class Counting(PassthroughProcessor):
    frames = 0

    async def process_video_async(self, frame):
        Counting.frames += 1
        return frame


async def refused_stream(trickle_server, segments: list[bytes], **config) -> list[dict]:
    """Publish ``segments`` to a fresh worker; the error events once the stream stopped by itself."""
    Counting.frames = 0
    async with running_worker(Counting, **config) as rt:
        await rt.wait_health("IDLE")
        stream = Stream.create(trickle_server)
        stream.listen()
        status, body = await rt.post("/stream/start", json=stream.start_body(SMALL))
        assert status == 200, body
        feeding = asyncio.create_task(publish(stream.url(), segments, close=False))
        try:
            async with asyncio.timeout(30):
                while "stream_stopped" not in stream.event_types():  # noqa: ASYNC110 (what the reader got)
                    await asyncio.sleep(0.05)
                while len(rt.worker.sessions):  # noqa: ASYNC110 (polling state)
                    await asyncio.sleep(0.05)
            assert (await rt.get("/health"))[1]["status"] == "IDLE"  # the worker itself is fine
        finally:
            feeding.cancel()
            await asyncio.gather(feeding, return_exceptions=True)
            await stream.close()
    return [e["event"] for e in stream.events if e["event"]["type"] == "error"]


async def test_a_16k_picture_is_refused_before_it_is_decoded(trickle_server) -> None:
    # A few bytes announce 16000x16000 (a 384 MB frame per decoded picture, more once converted to tensors).
    errors = await refused_stream(trickle_server, [announced_size_segment(16000, 16000)] * 3)
    assert errors and errors[-1]["error_type"] == "input", errors
    assert "16000x16000" in errors[-1]["message"] and "maximum" in errors[-1]["message"]
    assert Counting.frames == 0


async def test_input_over_a_configured_pixel_cap_ends_the_stream(trickle_server, make_segments) -> None:
    segments = make_segments(seconds=3, width=320, height=240, audio_codec=None)
    errors = await refused_stream(trickle_server, segments, max_input_pixels=160 * 120)
    assert errors[-1]["error_type"] == "input" and "320x240" in errors[-1]["message"], errors
    assert Counting.frames == 0


async def test_a_codec_outside_the_allow_list_is_never_decoded(trickle_server) -> None:
    errors = await refused_stream(trickle_server, [mpeg2_segment()] * 3)
    assert errors[-1]["error_type"] == "input", errors
    assert "mpeg2video is not accepted" in errors[-1]["message"]
    assert Counting.frames == 0


async def test_an_input_segment_over_the_byte_cap_ends_the_stream(trickle_server, make_segments) -> None:
    segments = make_segments(seconds=2, width=320, height=240, audio_codec=None)
    assert len(segments[0]) > 4096
    errors = await refused_stream(trickle_server, segments, max_segment_bytes=4096)
    assert errors[-1]["error_type"] == "input" and "larger than 4096 bytes" in errors[-1]["message"], errors


async def test_segment_reader_feeds_no_faster_than_the_decoder_reads() -> None:
    reader = SegmentReader(max_buffered=10)
    await asyncio.wait_for(reader.put(b"x" * 8), 1)  # under the bound: at once
    blocked = asyncio.create_task(reader.put(b"y" * 8))  # 16 bytes waiting: the feeder waits
    await asyncio.sleep(0.2)
    assert not blocked.done()
    got: list[bytes] = []
    thread = threading.Thread(target=lambda: got.append(reader.read_chunk()))  # the decode thread takes a chunk
    thread.start()
    await asyncio.wait_for(blocked, 5)
    thread.join()
    assert got == [b"x" * 8]
    reader.abort()
    await asyncio.wait_for(reader.put(b"z" * 100), 1)  # an aborted reader never holds the feeder
