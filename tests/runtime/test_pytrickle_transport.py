"""pytrickle's transport classes on this runtime, against a real trickle server: ``TricklePublisher`` /
``TrickleSubscriber`` over its trickle client, and ``TrickleClient`` running a whole stream on its session
pipeline (with frame skipping, as pytrickle's client applies it); ``send_monitoring_event`` on a stream."""

from __future__ import annotations

import asyncio
import contextlib
from types import ModuleType
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp.test_utils import TestServer
from byoc_runtime import trickle
from byoc_runtime.compat import install_pytrickle_alias

from .support import RunningWorker, Stream, decode_segments, publish, unique

pytestmark = pytest.mark.trickle


@pytest.fixture(scope="module")
def pt() -> ModuleType:
    assert install_pytrickle_alias(force=True)
    import pytrickle

    return pytrickle


async def test_publisher_and_subscriber_round_trip(pt: ModuleType, trickle_server: Any) -> None:
    url = trickle_server.create_channel(unique("pt-pubsub"), "application/octet-stream")
    subscriber = pt.TrickleSubscriber(url)
    publisher = pt.TricklePublisher(url, "application/octet-stream")
    first = asyncio.create_task(subscriber.next())
    await asyncio.sleep(0.2)
    async with await publisher.next() as segment:
        await segment.write(b"hel")
        await segment.write(b"lo")
    segment = await publisher.next()
    await segment.write(b"world")
    await segment.close()
    received = []
    for _ in range(2):
        # one segment at a time: asking this subscriber for the next one lets go of the current one
        seg = await asyncio.wait_for(first if not received else subscriber.next(), 10)
        assert seg is not None and not seg.eos()
        body = b""
        while (chunk := await seg.read()) is not None:
            body += chunk
        received.append((seg.seq(), body))
    assert received == [(0, b"hello"), (1, b"world")]
    await publisher.close()
    await subscriber.close()
    assert publisher.get_component_health()["state"] == "STOPPED"


async def test_trickle_client_runs_a_stream_with_frame_skipping(
    pt: ModuleType, trickle_server: Any, make_segments: Any
) -> None:
    class Invert(pt.FrameProcessor):
        async def process_video_async(self, frame: Any) -> Any:
            return frame.replace_tensor(1.0 - frame.tensor)

    stream = Stream.create(trickle_server, prefix="pt-client")
    stream.listen()
    data = bytearray()

    async def read_data(http: aiohttp.ClientSession) -> None:
        with contextlib.suppress(trickle.TrickleError):
            async with trickle.Subscriber(stream.url("-data"), session=http) as sub:
                async for segment in sub:
                    data.extend(await segment.read())

    protocol = pt.TrickleProtocol(
        subscribe_url=stream.url(""),
        publish_url=stream.url("-out"),
        control_url=stream.url("-control"),
        events_url=stream.url("-events"),
        data_url=stream.url("-data"),
        width=128,
        height=96,
        max_framerate=30,
    )
    client = pt.TrickleClient(protocol, Invert(), frame_skip_config=pt.FrameSkipConfig(target_fps=10))
    async with aiohttp.ClientSession() as http:
        reader = asyncio.create_task(read_data(http))
        running = asyncio.create_task(client.start("pt-client-stream", {"note": "x"}))
        feeding = asyncio.create_task(publish(stream.url(), make_segments(seconds=4, audio_codec="libopus")))
        await asyncio.sleep(1.0)
        assert client.running
        await protocol.publish_data("hello from the client")
        await feeding
        await asyncio.wait_for(running, 20)
        await stream.wait_ended()
        await asyncio.sleep(0.5)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await stream.close()
    assert not client.running and client.stop_event.is_set() and not client.error_event.is_set()
    out = decode_segments(stream.output)
    # 30 fps in; after the skipper's first 0.5 s one frame in three: about 10 fps.
    assert 30 <= len(out.video) <= 60, len(out.video)
    assert {img.shape for _, img in out.video} == {(96, 128, 3)}
    grey_bar = np.stack([img[:, :4] for _, img in out.video]).mean()
    assert grey_bar < 100  # the 192 grey bar on the left, inverted
    assert b"hello from the client" in data
    assert "stream_stopped" in stream.event_types()


async def test_send_monitoring_event_reaches_the_events_channel(
    pt: ModuleType, trickle_server: Any, make_segments: Any
) -> None:
    sent: list[bool] = []

    async def video(frame: Any) -> Any:
        if not sent:
            sent.append(await processor.send_monitoring_event({"type": "my_metric", "value": 1}))
        return frame

    processor = pt.StreamProcessor(video_processor=video, host="127.0.0.1")
    server = TestServer(processor.server.get_app(), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            rt = RunningWorker(processor.server.worker, str(server.make_url("")).rstrip("/"), http)
            await rt.wait_health("IDLE")
            stream = Stream.create(trickle_server, prefix="pt-monitoring")
            stream.listen()
            status, body = await rt.post("/stream/start", json=stream.start_body({"width": 64, "height": 64}))
            assert status == 200, body
            await publish(stream.url(), make_segments(seconds=2, audio_codec=None))
            await stream.wait_ended()
            await stream.close()
    finally:
        await server.close()
    assert sent == [True]
    assert {"event": {"type": "my_metric", "value": 1}, "queue_event_type": "custom_monitoring_event"} in stream.events
