"""JSON channels: round trip, JSON lines, keepalives, garbage."""

from __future__ import annotations

import asyncio

import pytest
from byoc_runtime.trickle import (
    JSON,
    JSONL,
    JsonPublisher,
    JsonSubscriber,
    Publisher,
    decode_segment,
    is_keepalive,
)

pytestmark = pytest.mark.trickle


async def collect(sub: JsonSubscriber, n: int) -> list[object]:
    out: list[object] = []
    async for msg in sub:
        out.append(msg)
        if len(out) == n:
            break
    return out


async def test_json_round_trip(make_channel) -> None:
    url = make_channel("control", JSON)
    messages = [{"prompt": "a cat", "n": 1}, {"keep": "alive"}, [1, 2, 3], "text", {"nested": {"x": None}}]
    async with JsonSubscriber(url) as sub, JsonPublisher(url) as pub:
        reader = asyncio.create_task(collect(sub, len(messages)))
        for m in messages:
            await pub.send(m)
        got = await asyncio.wait_for(reader, 10)
    assert got == messages
    assert [is_keepalive(m) for m in got] == [False, True, False, False, False]


async def test_jsonl_data_channel(make_channel) -> None:
    url = make_channel("data", JSONL)
    async with JsonSubscriber(url) as sub, JsonPublisher(url, mime_type=JSONL) as pub:
        reader = asyncio.create_task(collect(sub, 2))
        await pub.send([{"frame": 1}, {"frame": 2}])  # PyTrickle batches items in one line
        await pub.send({"frame": 3})
        got = await asyncio.wait_for(reader, 10)
    assert got == [[{"frame": 1}, {"frame": 2}], {"frame": 3}]


async def test_garbage_is_skipped(make_channel) -> None:
    url = make_channel("events", JSON)
    segments = [
        b"\xff\xfe\x00 not utf-8",
        b"not json at all",
        b'{"ok": 1}',
        b'{"a": 1}\n{broken\n{"b": 2}\n',  # JSON lines with one bad line
        b"   ",
        b'{"ok": 2}',
        b"x" * 5000,  # over the size limit below
        b'{"ok": 3}',
    ]
    async with JsonSubscriber(url, max_message_bytes=4096) as sub, Publisher(url, JSON) as pub:
        reader = asyncio.create_task(collect(sub, 5))
        for raw in segments:
            await pub.write_segment(raw)
            await asyncio.sleep(0.02)  # keep within the 5-segment window
        got = await asyncio.wait_for(reader, 10)
    assert got == [{"ok": 1}, {"a": 1}, {"b": 2}, {"ok": 2}, {"ok": 3}]


def test_decode_segment() -> None:
    assert decode_segment(b'{"a":1}') == [{"a": 1}]
    assert decode_segment(b"[1]\n[2]\n") == [[1], [2]]
    assert decode_segment(b"") == []
    assert decode_segment(b"\x80") == []
    assert not is_keepalive({"keep": "alive", "x": 1})
    assert not is_keepalive("keepalive")


def test_a_message_nested_too_deeply_is_skipped_not_raised() -> None:
    # json recurses per level: this was a RecursionError that killed the control task (review L2).
    assert decode_segment(b"[" * 100_000) == []
    assert decode_segment(b"[1]\n" + b"[" * 100_000 + b"\n[2]\n") == [[1], [2]]
