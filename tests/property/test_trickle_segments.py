"""Damaged input on a real trickle server, to a worker subscribed to it (hypothesis).

What each case should do, and is asserted:
- damage between good segments (garbage, cut or flipped MPEG-TS, missing tables, scrambled packet headers,
  empty segments; posted with missing, wrong or huge HTTP headers): the stream keeps going on the next good
  segment, and any error event it reports is a decode error, never an internal one;
- nothing but damage: the stream ends when the input does, as a stopped stream;
and in every case the session ends without hanging, the worker is IDLE again, and no session, task or aiohttp
client session is left behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
import pytest_asyncio
from byoc_testenv.trickle import TrickleServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..runtime.support import RunningWorker, Stream, decode_segments, running_worker
from .leaks import open_client_sessions, runtime_tasks, settle
from .segments import HEADERS, damaged, good_segments

pytestmark = pytest.mark.trickle

SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = {"width": 128, "height": 96, "max_framerate": 30}
GOOD_HEADERS = {"Content-Type": "video/mp2t"}
# Error kinds a stream may report for bad input; "internal" would mean the pipeline itself broke.
INPUT_ERRORS = {"decode"}
# Damage that leaves nothing decodable, so the stream must say so (a cut or flipped segment may still decode).
UNDECODABLE = {"garbage", "sync-only"}


@dataclass
class Fed:
    server: TrickleServer
    rt: RunningWorker
    tasks: set[asyncio.Task[object]]
    clients: set[aiohttp.ClientSession]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fed(trickle_server: TrickleServer) -> AsyncIterator[Fed]:
    good_segments()  # encoded once, before any timing matters
    async with running_worker("passthrough", capacity=1) as rt:
        await rt.wait_health("IDLE")
        yield Fed(trickle_server, rt, runtime_tasks(), open_client_sessions())


async def post(url: str, segments: list[tuple[bytes, dict[str, str]]]) -> None:
    """Publish as a gateway would, one POST per sequence number, each with its own headers; then DELETE."""
    async with aiohttp.ClientSession() as http:
        for seq, (data, headers) in enumerate(segments):
            async with http.post(f"{url}/{seq}", data=data, headers=headers, skip_auto_headers=["Content-Type"]):
                pass  # whatever the server says of a segment, the worker's side is what is tested
            await asyncio.sleep(0.1)
        async with http.delete(url):
            pass


async def stream_through(fed: Fed, segments: list[tuple[bytes, dict[str, str]]]) -> Stream:
    """Start a stream, feed it, and wait for the worker to end it; checks that nothing is left behind."""
    stream = Stream.create(fed.server, "fuzz")
    stream.listen()
    try:
        status, body = await fed.rt.post("/stream/start", json=stream.start_body(SMALL))
        assert status == 200, body
        await asyncio.sleep(0.5)  # let the worker subscribe before the first segment
        await post(stream.url(), segments)
        await settle(lambda: list(fed.rt.worker.sessions), 60)  # ends with its input, never hangs
        await stream.wait_ended(30)
    finally:
        await stream.close()
    await settle(lambda: runtime_tasks() - fed.tasks)
    await settle(lambda: open_client_sessions() - fed.clients)
    assert (await fed.rt.get("/health"))[1]["status"] == "IDLE"
    return stream


def errors(stream: Stream) -> list[dict[str, object]]:
    return [e["event"] for e in stream.events if e["event"]["type"] == "error"]


@SETTINGS
@given(damage=damaged(), headers=HEADERS)
async def test_damage_between_good_segments_is_survived(
    fed: Fed, damage: tuple[str, bytes], headers: dict[str, str]
) -> None:
    good = good_segments()
    kind, data = damage
    stream = await stream_through(
        fed, [(good[0], GOOD_HEADERS), (data, headers), (good[2], GOOD_HEADERS), (good[3], GOOD_HEADERS)]
    )
    assert {e.get("error_type") for e in errors(stream)} <= INPUT_ERRORS, (kind, errors(stream))
    if kind in UNDECODABLE:
        assert errors(stream), f"{kind}: nothing could be decoded, yet no error event"
    if kind == "empty":
        assert not errors(stream), errors(stream)  # an empty segment is no error: there was nothing to decode
    after = [t for t, _ in decode_segments(stream.output).video if t >= 2.0]
    assert len(after) >= 30, (kind, len(after), errors(stream))  # most of the two good seconds after the damage
    assert "stream_stopped" in stream.event_types()


@settings(SETTINGS, max_examples=6)
@given(damage=st.lists(damaged(), min_size=1, max_size=3), headers=HEADERS)
async def test_nothing_but_damage_ends_as_a_stopped_stream(
    fed: Fed, damage: list[tuple[str, bytes]], headers: dict[str, str]
) -> None:
    stream = await stream_through(fed, [(data, headers) for _, data in damage])
    assert {e.get("error_type") for e in errors(stream)} <= INPUT_ERRORS, ([k for k, _ in damage], errors(stream))
    assert "stream_stopped" in stream.event_types()
