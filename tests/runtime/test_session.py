"""End to end against a real trickle server: publish generated segments into ``{sid}``, start a session over
REST, read ``{sid}-out`` (and events, data) back and decode it."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from fractions import Fraction

import numpy as np
import pytest
import torch
from byoc_runtime import trickle
from byoc_runtime.frames import VideoFrame
from byoc_runtime.processors.base import FrameProcessor
from byoc_runtime.processors.builtin import GrayscaleProcessor, PassthroughProcessor

from .support import Stream, beep_onsets, decode_segments, flash_times, publish, running_worker

pytestmark = pytest.mark.trickle

SMALL = {"width": 128, "height": 96, "max_framerate": 30}


async def run_stream(
    rt, stream: Stream, segments: list[bytes], params=None, paced=True, settle: float = 0.0, **urls
) -> None:
    stream.listen()
    status, body = await rt.post(
        "/stream/start", json=stream.start_body(params or SMALL, **urls), headers={"X-Stream-Id": stream.sid}
    )
    assert status == 200, body
    if settle:
        # the worker subscribes right after answering; give it time to be waiting before a burst arrives
        await asyncio.sleep(settle)
    await publish(stream.url(), segments, paced=paced)
    await stream.wait_ended()
    await asyncio.sleep(0.3)  # last events
    await stream.close()


async def until(check, what: str, limit_s: float = 20.0) -> None:
    """Poll a condition on the event loop (the stream's readers run there too)."""
    try:
        async with asyncio.timeout(limit_s):
            while not check():  # noqa: ASYNC110 (polling state)
                await asyncio.sleep(0.1)
    except TimeoutError:
        pytest.fail(f"no {what} within {limit_s} s")


async def wait_ended(rt, limit_s: float = 10.0) -> None:
    async with asyncio.timeout(limit_s):
        while len(rt.worker.sessions):  # noqa: ASYNC110 (polling state)
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("audio", ["libopus", "aac"])
async def test_grayscale_stream_end_to_end(trickle_server, make_segments, audio: str) -> None:
    segments = make_segments(seconds=3, audio_codec=audio)
    async with running_worker("grayscale") as rt:
        await rt.wait_health("IDLE")
        stream = Stream.create(trickle_server)
        await run_stream(rt, stream, segments)
        await wait_ended(rt)
        assert (await rt.get("/health"))[1]["status"] == "IDLE"

    out = decode_segments(stream.output)
    assert out.video_codecs == {"h264"} and out.audio_codecs == {"opus"}  # AAC input comes out as Opus
    assert all(out.keyframe_first)  # every segment starts with a keyframe: joinable anywhere
    assert len(out.video) >= 85  # 90 in; at most a few lost at the edges
    assert {img.shape for _, img in out.video} == {(96, 128, 3)}
    chroma = max(np.abs(img[..., 0].astype(int) - img[..., 2].astype(int)).mean() for _, img in out.video)
    assert chroma < 4  # grey: R, G, B equal up to codec noise
    audio_seconds = sum(len(s) for _, s in out.audio) / out.audio_rate
    assert audio_seconds > 2.5
    flashes, beeps = flash_times(out), beep_onsets(out)
    assert len(flashes) == len(beeps) == 3
    assert all(abs(f - b) < 0.06 for f, b in zip(flashes, beeps, strict=True))
    types = stream.event_types()
    for expected in ("status", "heartbeat", "receive_first_ingest_segment", "send_first_processed_segment"):
        assert expected in types
    assert types[-2:] == ["stream_stopped", "status"]
    assert all(e["queue_event_type"] in ("ai_stream_events", "stream_heartbeat") for e in stream.events)


async def test_passthrough_keeps_the_image_and_output_size_follows_processor(trickle_server, make_segments) -> None:
    class Upscale(FrameProcessor):
        async def process_video_async(self, frame):
            return frame.replace_tensor(
                torch.nn.functional.interpolate(frame.tensor.permute(0, 3, 1, 2), scale_factor=2).permute(0, 2, 3, 1)
            )

    segments = make_segments(seconds=2, audio_codec="libopus")
    for processor, shape, converts in ((PassthroughProcessor, (96, 128, 3), False), (Upscale, (192, 256, 3), True)):
        async with running_worker(processor) as rt:
            await rt.wait_health("IDLE")
            stream = Stream.create(trickle_server)
            await run_stream(rt, stream, segments)
            _, metrics = await rt.get("/metrics")
        # A frame whose tensor the processor never reads is never converted to one (it is encoded as decoded).
        convert = re.search(r'^byoc_stage_seconds_count\{stage="convert"\} (\S+)$', metrics, re.MULTILINE)
        assert (convert is not None and float(convert[1]) >= 55) == converts, convert
        decode = re.search(r'^byoc_stage_seconds_count\{stage="decode"\} (\S+)$', metrics, re.MULTILINE)
        assert decode is not None and float(decode[1]) >= 55  # every decoded video frame is timed
        out = decode_segments(stream.output)
        assert {img.shape for _, img in out.video} == {shape}
        assert len(out.video) >= 55
        # Colour bars survive passthrough (the uint8 fast path), grey would not.
        assert max(np.abs(img[..., 0].astype(int) - img[..., 2].astype(int)).mean() for _, img in out.video) > 30


async def test_params_from_control_channel_and_rest(trickle_server, make_segments) -> None:
    segments = make_segments(seconds=4, audio_codec="libopus")
    async with running_worker(GrayscaleProcessor) as rt:
        await rt.wait_health("IDLE")
        stream = Stream.create(trickle_server)
        stream.listen()
        assert (await rt.post("/stream/start", json=stream.start_body(SMALL)))[0] == 200
        control = trickle.JsonPublisher(stream.url("-control"))
        feeding = asyncio.create_task(publish(stream.url(), segments))
        await control.send({"keep": "alive"})
        await until(lambda: stream.output, "a first output segment at the start size")
        await control.send({"width": 64, "height": 64})
        await until(
            lambda: (64, 64) in {img.shape[:2] for _, img in decode_segments(list(stream.output)).video},
            "output at the size the control channel asked for",
        )
        status, _ = await rt.post("/stream/params", json={"strength": 0}, headers={"X-Stream-Id": stream.sid})
        assert status == 200
        await feeding
        await stream.wait_ended()
        await control.close(delete=False)
        await asyncio.sleep(0.3)
        await stream.close()
    out = decode_segments(stream.output)
    sizes = [img.shape[:2] for _, img in out.video]
    assert sizes[0] == (96, 128) and (64, 64) in sizes
    colourful = [np.abs(img[..., 0].astype(int) - img[..., 2].astype(int)).mean() > 30 for _, img in out.video]
    assert not colourful[0] and colourful[-1]  # strength 0 turned the grey off
    updates = [e["event"]["params"] for e in stream.events if e["event"]["type"] == "params_updated"]
    assert {"width": 64, "height": 64} in updates and {"strength": 0} in updates


async def test_processor_data_goes_out_as_json_lines(trickle_server, make_segments) -> None:
    class Counter(PassthroughProcessor):
        frames = 0

        async def process_video_async(self, frame):
            self.frames += 1
            if self.frames % 10 == 0:
                await self.send_data({"frames": self.frames})
            return frame

    async with running_worker(Counter) as rt:
        await rt.wait_health("IDLE")
        stream = Stream.create(trickle_server)
        await run_stream(rt, stream, make_segments(seconds=2, audio_codec="libopus"))
    # pytrickle's format: every message on the channel is a JSON array (a batch), [] the keepalive.
    assert stream.data and all(isinstance(m, list) for m in stream.data), stream.data
    counts = [item["frames"] for batch in stream.data for item in batch]
    assert counts and counts == sorted(counts) and counts[0] == 10


async def test_data_lines_are_json_arrays_even_for_strings_with_newlines(trickle_server, make_segments) -> None:
    raw: list[bytes] = []

    class Captions(PassthroughProcessor):
        sent = False

        async def process_video_async(self, frame):
            if not self.sent:
                self.sent = True
                await self.send_data("line one\nline two")
                await self.send_data({"text": "x" * 40_000})  # two of these do not fit one 64 KiB line
                await self.send_data({"text": "y" * 40_000})
                await self.send_data("z" * 70_000)  # can never fit a line the gateway reads
            return frame

    async def read_raw(url: str) -> None:
        async with trickle.Subscriber(url) as sub:
            async for segment in sub:
                raw.append(await segment.read())

    async with running_worker(Captions) as rt:
        await rt.wait_health("IDLE")
        stream = Stream.create(trickle_server)
        reader = asyncio.create_task(read_raw(stream.url("-data")))
        await run_stream(rt, stream, make_segments(seconds=2))
        trickle_server.delete_channel(stream.sid + "-data")
        await asyncio.wait_for(reader, 10)
    lines = [line for segment in raw for line in segment.split(b"\n") if line]
    assert all(len(line) < 64 * 1024 for line in lines)
    import json

    batches = [json.loads(line) for line in lines]
    assert all(isinstance(b, list) for b in batches)
    items = [item for b in batches for item in b]
    assert items[0] == "line one\nline two"  # one SSE event, not two
    assert [i["text"][0] for i in items[1:] if isinstance(i, dict)] == ["x", "y"]
    errors = [e["event"]["message"] for e in stream.events if e["event"]["type"] == "error"]
    assert any("1 data item(s) dropped" in m for m in errors), errors


async def test_the_orchestrator_closing_the_channels_ends_the_stream(trickle_server, make_segments) -> None:
    # go-livepeer ends streams without calling the worker (insufficient balance, its control monitor): it closes
    # all five channels. A data-only stream (no input, the default for enable_video_ingress) must end too.
    async with running_worker(capacity=1) as rt:
        await rt.wait_health("IDLE")
        stream = Stream.create(trickle_server, channels=("-out", "-control", "-events", "-data"))
        stream.listen()
        body = stream.start_body(SMALL, subscribe_url=None)
        assert (await rt.post("/stream/start", json=body, headers={"X-Stream-Id": stream.sid}))[0] == 200
        await asyncio.sleep(1.0)
        assert len(rt.worker.sessions) == 1
        for suffix in ("-out", "-control", "-events", "-data"):
            trickle_server.delete_channel(stream.sid + suffix)
        await wait_ended(rt, 10)
        assert (await rt.get("/health"))[1]["available"] == 1  # the slot is free again
        await stream.close()


async def test_a_stream_with_neither_input_nor_control_does_not_live_forever(trickle_server) -> None:
    async with running_worker(capacity=1) as rt:
        rt.worker.settings = dataclasses.replace(rt.worker.settings, unattended_limit_s=1.0)
        await rt.wait_health("IDLE")
        stream = Stream.create(trickle_server, channels=("-out", "-events"))
        stream.listen()
        body = stream.start_body(SMALL, subscribe_url=None, control_url=None, data_url=None)
        assert (await rt.post("/stream/start", json=body))[0] == 200
        await wait_ended(rt, 10)
        await asyncio.sleep(0.3)
        await stream.close()
    assert any("no input and no control channel" in r for r in stream.stop_reasons()), stream.events


async def test_at_a_natural_end_the_output_channel_is_left_to_the_orchestrator(trickle_server, make_segments) -> None:
    # Deleting it would race the gateway's teardown into a needless swap (go-livepeer byoc/trickle.go).
    async with running_worker() as rt:
        await rt.wait_health("IDLE")
        stream = Stream.create(trickle_server)
        stream.listen()
        assert (await rt.post("/stream/start", json=stream.start_body(SMALL)))[0] == 200
        await publish(stream.url(), make_segments(seconds=1))
        await wait_ended(rt)
        await asyncio.sleep(0.5)
        assert stream.output and stream.stop_reasons() == ["input ended"]
        assert not stream._tasks[0].done()  # the output reader saw no end
        assert trickle_server.delete_channel(stream.sid + "-out")  # still there: the worker left it alone
        await stream.close()


async def test_corrupt_segment_and_input_changes_mid_stream(trickle_server, make_segments) -> None:
    first = make_segments(seconds=2, width=320, height=240, audio_codec="libopus")
    second = make_segments(seconds=2, width=176, height=144, audio_codec="aac", start_seconds=3)
    corrupt = bytearray(first[1])
    corrupt[100:] = bytes(len(corrupt) - 100)  # all but the first packet zeroed
    garbage = b"this is not mpeg-ts" * 500
    async with running_worker("grayscale") as rt:
        await rt.wait_health("IDLE")
        stream = Stream.create(trickle_server)
        await run_stream(rt, stream, [first[0], bytes(corrupt), garbage, *second])
        await wait_ended(rt)
    out = decode_segments(stream.output)
    times = [t for t, _ in out.video]
    assert {img.shape for _, img in out.video} == {(96, 128, 3)}
    assert any(t < 1 for t in times) and sum(t >= 3 for t in times) >= 55  # before and after the damage
    assert sum(len(s) for t, s in out.audio if t >= 3) / out.audio_rate > 1.5  # AAC input, audio goes on
    errors = [e["event"] for e in stream.events if e["event"]["type"] == "error"]
    assert errors and errors[0]["error_type"] == "decode"
    assert "stream_stopped" in stream.event_types()


async def test_processor_errors_keep_the_stream_alive_until_too_many(trickle_server, make_segments) -> None:
    class Flaky(PassthroughProcessor):
        calls = 0

        async def process_video_async(self, frame):
            self.calls += 1
            if self.calls % 3 == 0:
                raise RuntimeError("flaky model")
            return frame

    class Broken(PassthroughProcessor):
        async def process_video_async(self, frame):
            raise RuntimeError("always broken")

    segments = make_segments(seconds=2, audio_codec="libopus")
    async with running_worker(Flaky) as rt:
        await rt.wait_health("IDLE")
        stream = Stream.create(trickle_server)
        await run_stream(rt, stream, segments)
    assert len(decode_segments(stream.output).video) >= 55  # failed frames pass through
    errors = [e["event"] for e in stream.events if e["event"]["type"] == "error"]
    assert len(errors) == 1 and "flaky model" in errors[0]["message"]  # rate-limited

    async with running_worker(Broken) as rt:
        rt.worker.settings = dataclasses.replace(rt.worker.settings, max_processor_errors=10)
        await rt.wait_health("IDLE")
        stream = Stream.create(trickle_server)
        stream.listen()
        await rt.post("/stream/start", json=stream.start_body(SMALL))
        feeding = asyncio.create_task(publish(stream.url(), segments))
        await wait_ended(rt)
        await stream.wait_output_closed(20)  # the worker ended the stream itself: the gateway sees the end
        feeding.cancel()
        await asyncio.sleep(0.3)
        await stream.close()
        assert (await rt.get("/health"))[1]["status"] == "IDLE"
    assert any("10 frames in a row" in (e["event"].get("message") or "") for e in stream.events)


async def test_slow_processor_drops_frames_latency_stays_bounded(trickle_server, make_segments) -> None:
    class Slow(PassthroughProcessor):
        async def process_video_async(self, frame):
            await asyncio.sleep(0.1)  # 10 fps against 30 fps input
            return frame

    segments = make_segments(seconds=4, audio_codec="libopus")
    async with running_worker(Slow) as rt:
        await rt.wait_health("IDLE")
        stream = Stream.create(trickle_server)
        started = time.monotonic()
        await run_stream(rt, stream, segments)
        elapsed = time.monotonic() - started
        _, metrics = await rt.get("/metrics")
    out = decode_segments(stream.output)
    assert 25 <= len(out.video) <= 60
    assert elapsed < 4 + 3  # output ends soon after input: no backlog built up
    assert 'byoc_frames_dropped_total{kind="video",reason="processing_behind"}' in metrics
    assert sum(len(s) for _, s in out.audio) / out.audio_rate > 3.5  # audio is not dropped


async def test_stuck_processor_fails_the_session_and_is_replaced(trickle_server, make_segments) -> None:
    class Stuck(PassthroughProcessor):
        calls = 0  # shared by all instances: only the first one gets stuck

        async def process_video_async(self, frame):
            type(self).calls += 1
            if type(self).calls == 5:
                time.sleep(3)  # noqa: ASYNC251 (a model wedged in synchronous code)
            return frame

    async with running_worker(Stuck, processor_timeout=0.5) as rt:
        await rt.wait_health("IDLE")
        stream = Stream.create(trickle_server)
        stream.listen()
        await rt.post("/stream/start", json=stream.start_body(SMALL))
        feeding = asyncio.create_task(publish(stream.url(), make_segments(seconds=2, audio_codec="libopus")))
        await wait_ended(rt)
        await feeding
        await asyncio.sleep(0.3)
        await stream.close()
        errors = [e["event"] for e in stream.events if e["event"]["type"] == "error"]
        assert errors and errors[0]["error_type"] == "processor_timeout"
        await rt.wait_health("IDLE", 10)  # a fresh instance replaced the stuck one
        again = Stream.create(trickle_server)
        await run_stream(rt, again, make_segments(seconds=2, audio_codec="libopus"))
    assert len(decode_segments(again.output).video) >= 55


async def test_trickle_server_going_away_ends_only_its_session(trickle_server, make_segments) -> None:
    from byoc_testenv.trickle import TrickleServer

    doomed_server = TrickleServer.start()
    segments = make_segments(seconds=6, audio_codec="libopus")
    try:
        async with running_worker("passthrough", capacity=2) as rt:
            await rt.wait_health("IDLE")
            healthy, doomed = Stream.create(trickle_server), Stream.create(doomed_server)
            healthy.listen()
            for stream in (healthy, doomed):
                assert (await rt.post("/stream/start", json=stream.start_body(SMALL)))[0] == 200
            feeding = [asyncio.create_task(publish(s.url(), segments)) for s in (healthy, doomed)]
            await until(lambda: healthy.output, "output while both streams run")
            doomed_server.stop(kill=True)
            await asyncio.gather(*feeding, return_exceptions=True)
            await healthy.wait_ended(20)
            async with asyncio.timeout(30):
                while len(rt.worker.sessions):  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            await healthy.close()
            _, metrics = await rt.get("/metrics")
    finally:
        doomed_server.stop()
    assert len(decode_segments(healthy.output).video) >= 170
    assert 'byoc_sessions_ended_total{outcome="failed"} 1.0' in metrics
    assert 'byoc_sessions_ended_total{outcome="completed"} 1.0' in metrics


async def test_stop_mid_stream_releases_everything(trickle_server, make_segments) -> None:
    async with running_worker("grayscale") as rt:
        await rt.wait_health("IDLE")
        stream = Stream.create(trickle_server)
        stream.listen()
        assert (await rt.post("/stream/start", json=stream.start_body(SMALL)))[0] == 200
        feeding = asyncio.create_task(publish(stream.url(), make_segments(seconds=4, audio_codec="libopus")))
        await until(lambda: stream.output, "output before the stop (mid stream)")
        started = time.monotonic()
        assert (await rt.post("/stream/stop", headers={"X-Stream-Id": stream.sid}))[0] == 200
        assert time.monotonic() - started < 5
        assert len(rt.worker.sessions) == 0 and rt.worker.pool.free == 1
        feeding.cancel()
        await asyncio.gather(feeding, return_exceptions=True)
        await asyncio.sleep(0.3)
        await stream.close()
    assert "stream_stopped" in stream.event_types()
    assert len(stream.output) >= 1


async def test_input_ahead_of_real_time_is_caught_up_without_drops(trickle_server, make_segments) -> None:
    """Whole segments published at once (a backlog): frames go through as fast as the pipeline takes them,
    not at the pace of their timestamps, and none is dropped."""
    segments = make_segments(seconds=4, audio_codec="libopus")
    async with running_worker(PassthroughProcessor) as rt:
        await rt.wait_health("IDLE")
        stream = Stream.create(trickle_server)
        settle = 1.0
        started = time.monotonic()
        await run_stream(rt, stream, segments, paced=False, settle=settle)
        elapsed = time.monotonic() - started - settle
        _, metrics = await rt.get("/metrics")
    out = decode_segments(stream.output)
    # Published all at once, the last segment can end before the worker subscribes to it (not a drop).
    assert len(out.video) in (90, 120)
    assert 'reason="processing_behind"' not in metrics
    assert 'reason="encoding_behind"' not in metrics
    assert elapsed < 3.5  # paced, 4 s of input would take over 4 s


async def test_frames_a_processor_sends_as_input_are_processed_and_published(trickle_server, make_segments) -> None:
    """pytrickle's ``send_input_frame``: a frame the processor makes goes through the pipeline like a decoded one."""
    seen: list[int] = []
    made: list[int] = []
    processed_made: list[int] = []

    class Injector(FrameProcessor):
        async def process_video_async(self, frame):
            if frame.tensor[..., 0].mean() > 0.9 and frame.tensor[..., 1].mean() < 0.1:  # one of ours
                processed_made.append(frame.timestamp)
                return frame
            seen.append(frame.timestamp)
            if len(seen) in (10, 20, 30):
                # withhold this frame; send a red one with its timestamp in its place
                red = torch.zeros_like(frame.tensor)
                red[..., 0] = 1.0
                made.append(frame.timestamp)
                assert await self.send_input_frame(frame.replace_tensor(red))
                return None
            return frame

    idle = Injector()
    assert not await idle.send_input_frame(idle_frame())  # no stream: nowhere to go
    async with running_worker(lambda: Injector()) as rt:
        await rt.wait_health("IDLE")
        stream = Stream.create(trickle_server)
        await run_stream(rt, stream, make_segments(seconds=2, audio_codec=None))
    assert len(made) == 3 and processed_made == made
    out = decode_segments(stream.output)
    red = [img for _, img in out.video if img[..., 0].mean() > 200 and img[..., 1].mean() < 40]
    assert len(red) == 3


def idle_frame() -> VideoFrame:
    return VideoFrame(torch.zeros(1, 8, 8, 3), 0, Fraction(1, 90_000))
