"""Outages, retries, the -2 fallback and connection hygiene."""

from __future__ import annotations

import asyncio
import time

import psutil
import pytest
from aiohttp import web
from byoc_runtime.trickle import (
    Publisher,
    RetryPolicy,
    SegmentError,
    Subscriber,
    TrickleError,
)
from byoc_runtime.trickle.protocol import channel_label
from byoc_testenv.local_http import serving
from byoc_testenv.trickle import TrickleServer

pytestmark = pytest.mark.trickle


def established_to(port: int) -> int:
    """TCP connections from this process to 127.0.0.1:port that are still open."""
    return sum(
        1
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


FAST_GIVE_UP = RetryPolicy(attempts=3, base_delay=0.05, max_delay=0.1)


async def test_outage_then_resume(own_server) -> None:
    url = own_server.url("ch")
    received: list[bytes] = []

    async def consume(sub: Subscriber) -> None:
        async for seg in sub:
            try:
                received.append(await seg.read())
            except SegmentError:
                received.append(b"<cut>")

    async with Publisher(url) as pub, Subscriber(url) as sub:
        consumer = asyncio.create_task(consume(sub))
        for i in range(3):
            await pub.write_segment(b"before-%d" % i)
        await asyncio.sleep(0.2)

        # the server dies in the middle of a segment
        with pytest.raises(SegmentError):
            async with pub.segment() as w:
                await w.write(b"half")
                await asyncio.sleep(0.1)
                own_server.restart(kill=True)  # same port, channel "ch" re-created at startup
                await asyncio.sleep(0.2)
                await w.write(b"more")

        # both sides retry and carry on against the new server process
        deadline = time.monotonic() + 15
        n = 0
        while not any(d.startswith(b"after-") for d in received):
            assert time.monotonic() < deadline, f"subscriber did not resume: {received}"
            await pub.write_segment(b"after-%d" % n)
            n += 1
            await asyncio.sleep(0.1)
        assert not consumer.done()
        consumer.cancel()
    assert received[:3] == [b"before-0", b"before-1", b"before-2"]


async def test_subscriber_gives_up_after_backoff(own_server) -> None:
    url = own_server.url("ch")
    own_server.stop()
    sub = Subscriber(url, retry=FAST_GIVE_UP)
    started = time.monotonic()
    with pytest.raises(TrickleError, match="giving up after 3 attempts"):
        await sub.next()
    assert time.monotonic() - started < 5
    assert sub.ended
    await sub.close()


async def test_publisher_gives_up_after_backoff(own_server) -> None:
    url = own_server.url("ch")
    own_server.stop()
    pub = Publisher(url, retry=FAST_GIVE_UP)
    with pytest.raises(TrickleError, match="giving up after 3 attempts"):
        await pub.write_segment(b"x")
    await pub.close()


async def test_publisher_retries_segment_start(own_server) -> None:
    url = own_server.url("ch")
    port = own_server.port
    own_server.stop()

    async def bring_back() -> None:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(own_server.restart)

    restart = asyncio.create_task(bring_back())
    async with Publisher(url) as pub, Subscriber(url) as sub:
        await pub.write_segment(b"made it")  # first tries fail: connection refused
        await restart
        seg = await asyncio.wait_for(sub.next(), 5)
        assert seg is not None and await seg.read() == b"made it"
    assert own_server.port == port


async def test_falls_back_to_live_edge_when_minus_two_is_rejected() -> None:
    """Older go-livepeer servers drop the connection on GET .../-2 (ring index panic)."""
    asked: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seq = request.match_info["seq"]
        asked.append(seq)
        if seq == "-2":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if seq == "-1":
            return web.Response(body=b"edge", headers={"Lp-Trickle-Seq": "3"})
        return web.Response(headers={"Lp-Trickle-Seq": seq, "Lp-Trickle-Closed": "terminated"})

    app = web.Application()
    app.router.add_get("/ch/{seq}", handler)
    async with serving(app) as base_url, Subscriber(f"{base_url}/ch") as sub:
        got = [(s.seq, await s.read()) async for s in sub]
    assert got == [(3, b"edge")]
    # (aiohttp itself may retry an idempotent GET once on a dropped connection)
    assert set(asked[:-2]) == {"-2"} and asked[-2:] == ["-1", "4"]


async def test_cancelling_mid_segment_releases_connections(own_server) -> None:
    url = own_server.url("ch")
    port = own_server.port
    pub = Publisher(url)
    sub = Subscriber(url)
    first_bytes = asyncio.Event()

    async def consume() -> None:
        async for seg in sub:
            async for _ in seg.iter_chunks():
                first_bytes.set()

    async def produce() -> None:
        async with pub.segment() as w:
            await w.write(b"x" * 100_000)
            await asyncio.sleep(3600)  # never finishes the segment

    consumer = asyncio.create_task(consume())
    producer = asyncio.create_task(produce())
    await asyncio.wait_for(first_bytes.wait(), 5)
    assert established_to(port) >= 3  # segment POST, pre-connected POST, GET, pre-connected GET

    # cancel reader and writer mid-segment, then close both clients
    for task in (consumer, producer):
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    await sub.close()
    await pub.close(delete=False)
    await asyncio.sleep(0.1)
    assert established_to(port) == 0
    with pytest.raises(TrickleError):
        await pub.write_segment(b"closed")


async def test_idle_channel_sweep_ends_subscribers() -> None:
    server = TrickleServer.start(channels=["ch"], idle_timeout=0.5, sweep_interval=0.1)
    try:
        async with Subscriber(server.url("ch")) as sub:
            started = time.monotonic()
            assert await asyncio.wait_for(sub.next(), 5) is None  # channel swept: a clean end
            assert time.monotonic() - started >= 0.3
    finally:
        server.stop()


def test_channel_urls_never_appear_in_log_or_error_text() -> None:
    # Channel URLs are credentials (go-livepeer doc/live-runner.md): the stream name becomes a digest.
    url = "https://127.0.0.1:18935/ai/trickle/218ee0f8687aa6ad-events"
    label = channel_label(url + "/5")
    assert "218ee0f8687aa6ad" not in label
    assert label.startswith("127.0.0.1:18935/") and label.endswith("/5") and "-events#" in label
    assert channel_label(url) != channel_label(url.replace("218ee", "318ee"))  # still tells channels apart


async def test_a_failed_subscription_names_no_url(caplog) -> None:
    url = "http://127.0.0.1:9/ai/trickle/secret-stream-name-out"  # nothing listens on port 9
    with caplog.at_level("INFO"):
        sub = Subscriber(url, retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.01))
        with pytest.raises(TrickleError) as err:
            async with sub:
                async for _ in sub:
                    pass
    assert "secret-stream-name" not in str(err.value)
    assert "secret-stream-name" not in caplog.text and "-out#" in caplog.text


async def test_a_stalled_segment_body_is_cut_off() -> None:
    """A server that sends a segment's first bytes and then nothing must not hold the session's slot forever
    (review L11): the read times out and the segment ends with an error."""
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Lp-Trickle-Seq": "0"})
        await resp.prepare(request)
        await resp.write(b"first bytes")
        await release.wait()  # stalls
        return resp

    app = web.Application()
    app.router.add_get("/ch/{seq}", handler)
    async with serving(app) as base_url:
        try:
            async with Subscriber(f"{base_url}/ch", read_timeout=0.5) as sub:
                segment = await asyncio.wait_for(sub.next(), 5)
                assert segment is not None
                began = time.monotonic()
                with pytest.raises(SegmentError, match="cut off"):
                    await asyncio.wait_for(segment.read(), 10)
                assert time.monotonic() - began < 5
        finally:
            release.set()  # before the server shuts down: it waits for its handlers
