"""Media-style channels: ordering, live edge, window catch-up, streaming, end of stream."""

from __future__ import annotations

import asyncio
import os

import pytest
from byoc_runtime.trickle import (
    SEQ_NEXT,
    ChannelClosed,
    Publisher,
    Segment,
    Subscriber,
    TrickleError,
)
from byoc_testenv.polling import wait_for

pytestmark = pytest.mark.trickle


async def read_all(segment: Segment) -> bytes:
    return b"".join([c async for c in segment.iter_chunks()])


async def test_roundtrip_in_order(trickle_channel: str) -> None:
    url = trickle_channel
    payloads = [os.urandom(1000 * (i + 1)) for i in range(10)]
    received: list[tuple[int, bytes]] = []
    progress = asyncio.Condition()

    async def consume() -> None:
        async with Subscriber(url) as sub:
            async for seg in sub:
                data = await read_all(seg)
                async with progress:
                    received.append((seg.seq, data))
                    progress.notify_all()
                if len(received) == len(payloads):
                    return

    consumer = asyncio.create_task(consume())
    async with Publisher(url) as pub:
        for i, payload in enumerate(payloads):
            # stay inside the server's 5-segment window whatever the scheduling
            async with progress:
                await asyncio.wait_for(progress.wait_for(lambda i=i: len(received) >= i - 3), 10)
            async with pub.segment() as w:
                assert w.seq == i
                for off in range(0, len(payload), 777):  # several writes per segment
                    await w.write(payload[off : off + 777])
        await asyncio.wait_for(consumer, 10)
    assert [s for s, _ in received] == list(range(10))
    assert [d for _, d in received] == payloads


async def test_join_mid_stream_starts_at_live_edge(make_channel) -> None:
    url = make_channel()
    async with Publisher(url) as pub:
        for i in range(7):
            await pub.write_segment(b"old-%d" % i)

        live = Subscriber(url, start_seq=SEQ_NEXT)
        current = Subscriber(url)  # default -2: the most recent segment, from its start
        try:
            first_live = asyncio.create_task(live.next())
            # -2 hands out the latest segment at once
            seg = await asyncio.wait_for(current.next(), 5)
            assert seg is not None and seg.seq == 6 and await seg.read() == b"old-6"
            await asyncio.sleep(0.2)
            assert not first_live.done()  # -1 waits for a segment that has not started yet
            await pub.write_segment(b"new-7")
            seg = await asyncio.wait_for(first_live, 5)
            assert seg is not None and seg.seq == 7 and await seg.read() == b"new-7"
            # and the -2 subscriber continues in order
            seg = await asyncio.wait_for(current.next(), 5)
            assert seg is not None and seg.seq == 7
        finally:
            await live.close()
            await current.close()


async def test_falling_out_of_window_jumps_to_latest(make_channel) -> None:
    url = make_channel()
    async with Publisher(url) as pub, Subscriber(url) as sub:
        await pub.write_segment(b"s0")
        seg = await asyncio.wait_for(sub.next(), 5)
        assert seg is not None and seg.seq == 0
        # the subscriber stalls while 9 more segments go by (ring holds 5)
        for i in range(1, 10):
            await pub.write_segment(b"s%d" % i)
        seg = await asyncio.wait_for(sub.next(), 5)
        # seq 1 was already pre-connected (as upstream does) and is still delivered whole
        assert seg is not None and seg.seq == 1 and await seg.read() == b"s1"
        nxt = asyncio.create_task(sub.next())
        await asyncio.sleep(0.2)
        await pub.write_segment(b"s10")
        seg = await asyncio.wait_for(nxt, 5)
        # seq 2 is out of the window: 470 -> Lp-Trickle-Latest (10), the live edge
        assert seg is not None and seg.seq == 10 and await seg.read() == b"s10"


async def test_big_segment_streams_before_it_is_finished(make_channel) -> None:
    url = make_channel()
    chunk = 64 * 1024
    payload = os.urandom(8 * 1024 * 1024)
    got_first = asyncio.Event()
    received = bytearray()

    async def consume() -> None:
        async with Subscriber(url) as sub:
            seg = await sub.next()
            assert seg is not None
            async for data in seg.iter_chunks():
                received.extend(data)
                got_first.set()
            assert seg.complete

    consumer = asyncio.create_task(consume())
    async with Publisher(url) as pub, pub.segment() as w:
        await w.write(payload[:chunk])
        # the segment is still open: the subscriber must already have its first bytes
        await asyncio.wait_for(got_first.wait(), 5)
        assert 0 < len(received) < len(payload)
        for off in range(chunk, len(payload), chunk):
            await w.write(payload[off : off + chunk])
    await asyncio.wait_for(consumer, 20)
    assert bytes(received) == payload


async def test_empty_segments_are_skipped(make_channel) -> None:
    url = make_channel()
    async with Publisher(url) as pub, Subscriber(url) as sub:
        reader = asyncio.create_task(sub.next())
        await pub.write_segment(b"zero")
        async with pub.segment():
            pass  # an empty segment (seq 1)
        await pub.write_segment(b"two")
        first = await asyncio.wait_for(reader, 5)
        assert first is not None and (first.seq, await first.read()) == (0, b"zero")
        second = await asyncio.wait_for(sub.next(), 5)
        assert second is not None and (second.seq, await second.read()) == (2, b"two")


async def test_publisher_close_deletes_channel_and_ends_subscribers(make_channel) -> None:
    url = make_channel()
    pub = Publisher(url)
    async with Subscriber(url) as sub:
        await pub.write_segment(b"x")
        seg = await asyncio.wait_for(sub.next(), 5)
        assert seg is not None and await seg.read() == b"x"
        waiting = asyncio.create_task(sub.next())
        await asyncio.sleep(0.1)
        await pub.close()  # DELETE the channel
        assert await asyncio.wait_for(waiting, 5) is None  # a clean end, no error
        assert sub.ended
    with pytest.raises(TrickleError):
        await pub.write_segment(b"after close")


async def test_publisher_of_deleted_channel_is_told(trickle_server, make_channel) -> None:
    url = make_channel()
    async with Publisher(url) as pub:
        await pub.write_segment(b"x")  # seq 1 is now pre-connected
        await asyncio.to_thread(trickle_server.delete_channel, url.rsplit("/", 1)[1])
        with pytest.raises(ChannelClosed):
            await pub.write_segment(b"y")
        with pytest.raises(ChannelClosed):  # and stays told, without asking the server again
            await pub.write_segment(b"z")


async def test_unknown_channel(trickle_server) -> None:
    url = trickle_server.url("no-such-channel")
    async with Subscriber(url) as sub:
        segments = [s async for s in sub]
    assert segments == []
    pub = Publisher(url)
    try:
        with pytest.raises(ChannelClosed) as info:
            await pub.write_segment(b"x")
        assert info.value.status == 404
    finally:
        await pub.close(delete=False)


async def test_idle_preconnect_survives_100_continue(own_server) -> None:
    # own_server answers 100 Continue after 0.5 s without bytes
    url = own_server.url("ch")
    async with Publisher(url) as pub, Subscriber(url) as sub:
        reader = asyncio.create_task(sub.next())
        await pub.write_segment(b"a")
        await asyncio.sleep(1.6)  # the pre-connected POST for seq 1 gets several 100 Continue
        await pub.write_segment(b"b")
        first = await asyncio.wait_for(reader, 5)
        assert first is not None and await first.read() == b"a"
        second = await asyncio.wait_for(sub.next(), 5)
        assert second is not None and (second.seq, await second.read()) == (1, b"b")
    # the pre-connect's headers reached the server at once (aiohttp would hold them back)
    assert "sending 100 Continue" in own_server.read_log()


async def test_waiting_get_is_refreshed(own_server) -> None:
    url = own_server.url("ch")

    def abandoned_gets() -> int:  # the server logs each waiting GET the subscriber gave up to re-issue
        return sum(
            "subscriber went away" in line and "channel=ch " in line for line in own_server.read_log().splitlines()
        )

    async with Publisher(url) as pub, Subscriber(url, refresh_interval=0.2) as sub:
        reader = asyncio.create_task(sub.next())
        await asyncio.to_thread(wait_for, lambda: abandoned_gets() >= 3, 10, "three re-issued GETs")
        assert not reader.done()
        await pub.write_segment(b"late")
        seg = await asyncio.wait_for(reader, 5)
        assert seg is not None and (seg.seq, await seg.read()) == (0, b"late")
