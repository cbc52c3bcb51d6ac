"""Live Runner sessions end to end: test orchestrator + real trickle server + our runtime + the registrar.

client --reserve--> orchestrator --proxied app call + Livepeer-Session-*--> runtime --channels callback-->
orchestrator (creates trickle channels) ... client publishes "in", reads "out" ... stop releases the slot.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import numpy as np
import pytest
from byoc_runtime import trickle
from byoc_testenv.polling import eventually

from tests.runtime.support import decode_segments, publish, running_worker

from .support import registrar_args, running_registrar

pytestmark = pytest.mark.trickle

SMALL = {"width": 128, "height": 96, "max_framerate": 30}


async def read_output(url: str, into: list[bytes]) -> None:
    async with aiohttp.ClientSession() as http:
        with contextlib.suppress(trickle.TrickleError):
            async with trickle.Subscriber(url, session=http) as sub:
                async for segment in sub:
                    with contextlib.suppress(trickle.SegmentError):
                        into.append(await segment.read())


def _chroma(img: np.ndarray) -> float:
    return float(np.abs(img[..., 0].astype(int) - img[..., 2].astype(int)).mean())


async def read_events(url: str, into: list[dict]) -> None:
    async with aiohttp.ClientSession() as http:
        with contextlib.suppress(trickle.TrickleError):
            async for message in trickle.JsonSubscriber(url, session=http):
                into.append(message)


async def used(client) -> int | None:
    runner = await client.runner()
    return None if runner is None else runner["capacity_used"]


async def test_grayscale_session_through_the_orchestrator(make_orch, client_for, secret_file, segments) -> None:
    orch = await make_orch()
    client = client_for(orch)
    async with running_worker("grayscale") as rt, running_registrar(registrar_args(orch, rt.base_url, secret_file)):
        await eventually(lambda: client.runner(), 10, "the runner", interval=0.05)  # ready once the processor loaded
        runner = await client.runner()
        assert (runner["app"], runner["capacity"], runner["capacity_available"]) == (
            "live-video-to-video/grayscale",
            1,
            1,
        )

        status, reservation = await client.reserve(runner["url"])
        assert status == 200, reservation
        status, job = await client.call(reservation, "/live-video-to-video", {"params": SMALL, "model_id": "x"})
        assert status == 200, job
        # The live-video-to-video job shape the Python SDK reads, with the orchestrator's public channel URLs.
        assert job["manifest_id"] == job["session_id"] == reservation.session_id
        for key, name in [("publish_url", "in"), ("subscribe_url", "out"), ("control_url", "control"),
                          ("events_url", "events"), ("data_url", "data")]:  # fmt: skip
            assert job[key] == f"{orch.trickle_base_url.rstrip('/')}/{reservation.session_id}-{name}"
        assert await used(client) == 1

        # A retried call of the same session gets the same stream back.
        status, again = await client.call(reservation, "/stream/start", {"params": SMALL})
        assert (
            status == 200
            and again["message"] == "Stream already running"
            and again["publish_url"] == job["publish_url"]
        )

        output: list[bytes] = []
        events: list[dict] = []
        reader = asyncio.create_task(read_output(job["subscribe_url"], output))

        events_task = asyncio.create_task(read_events(job["events_url"], events))
        await publish(job["publish_url"], segments(seconds=3, audio_codec="libopus"), close=False)
        await eventually(lambda: len(output) >= 2, 15, "len(output) >= 2", interval=0.05)

        # Params through the proxy reach this session (its own id, from the proxy's header).
        grey_until = len(output)  # segments out before the update: full grey (strength 1)
        status, body = await client.call(reservation, "/stream/params", {"strength": 0.5})
        assert status == 200, body
        assert rt.worker.sessions.get(reservation.session_id).params["strength"] == 0.5
        # The status the update emits reaches the events channel (before the client ends the session, which
        # deletes the channels: what was not delivered by then is gone).
        await eventually(
            lambda: "status" in [e.get("event", {}).get("type") for e in events], 15, "a status event", interval=0.05
        )

        # The client ends the session at the orchestrator: slot released, channels gone, the worker's session ends.
        assert await client.stop(reservation) == 204
        assert await used(client) == 0
        await eventually(lambda: not len(rt.worker.sessions), 15, "not len(rt.worker.sessions)", interval=0.05)
        await asyncio.wait_for(reader, 10)
        events_task.cancel()
        await asyncio.gather(events_task, return_exceptions=True)

    out = decode_segments(output)
    assert out.video_codecs == {"h264"} and len(out.video) >= 30
    assert {img.shape for _, img in out.video} == {(96, 128, 3)}
    before = decode_segments(output[:grey_until]).video
    assert before and all(_chroma(img) < 4 for _, img in before)  # grey
    # strength 0.5 from the frame the update reached on: grey up to there, half colour after (the last frame may
    # be the only one, held in the demuxer until the stream ended).
    after = [_chroma(img) >= 4 for _, img in out.video[len(before) :]]
    assert after == sorted(after)
    assert "status" in [e.get("event", {}).get("type") for e in events]


async def test_runner_releases_the_session_when_its_stream_ends(make_orch, client_for, secret_file, segments) -> None:
    orch = await make_orch()
    client = client_for(orch)
    async with (
        running_worker("passthrough", capacity=2) as rt,
        running_registrar(registrar_args(orch, rt.base_url, secret_file)),
    ):
        await eventually(lambda: client.runner(), 10, "client.runner()", interval=0.05)
        url = (await client.runner())["url"]

        # 1. the input ends (the client closes "in"): the session ends and the runner calls Session-Control/stop.
        _, first = await client.reserve(url)
        status, job = await client.call(first, "/live-video-to-video", {"params": SMALL})
        assert status == 200, job
        await publish(job["publish_url"], segments(seconds=1, audio_codec=None), close=True)
        await eventually(
            lambda: rt.worker.find(first.session_id) is None,
            15,
            "rt.worker.find(first.session_id) is None",
            interval=0.05,
        )

        # 2. /stream/stop through the proxy stops this session only, and its client reads why on "events" before
        # the release closes the channels (a stop at the orchestrator closes them at once: nothing can follow).
        _, second = await client.reserve(url)
        status, job = await client.call(second, "/stream/start", {"params": SMALL})
        assert status == 200, job
        assert await used(client) == 1
        events: list[dict] = []
        events_task = asyncio.create_task(read_events(job["events_url"], events))
        await eventually(lambda: bool(events), 15, "bool(events)", interval=0.05)
        status, body = await client.call(second, "/stream/stop", None, headers={"X-Stream-Id": "someone-else"})
        assert status == 200, body
        await eventually(lambda: not len(rt.worker.sessions), 10, "not len(rt.worker.sessions)", interval=0.05)
        await eventually(
            lambda: orch.live_runners.runners["pod-0"].sessions == {},
            10,
            "orch.live_runners.runners['pod-0'].sessions == {}",
            interval=0.05,
        )
        assert await used(client) == 0
        await asyncio.wait_for(events_task, 10)  # the release closed the channel: the reader ends
        stopped = [e["event"] for e in events if e.get("event", {}).get("type") == "stream_stopped"]
        assert [e.get("reason") for e in stopped] == ["stopped by request"], events


async def test_refused_starts_release_their_reservation(make_orch, client_for, secret_file) -> None:
    orch = await make_orch()
    client = client_for(orch)
    # The orchestrator is told 2 slots while the worker has 1: the worker itself must refuse the second.
    async with running_worker("passthrough", capacity=1) as rt:
        async with running_registrar(registrar_args(orch, rt.base_url, secret_file, "--capacity", "2")):
            await eventually(lambda: client.runner(), 10, "client.runner()", interval=0.05)
            url = (await client.runner())["url"]
            _, first = await client.reserve(url)
            assert (await client.call(first, "/live-video-to-video", {"params": SMALL}))[0] == 200

            _, second = await client.reserve(url)
            assert await used(client) == 2
            status, body = await client.call(second, "/live-video-to-video", {"params": SMALL})
            assert (status, body["reason"]) == (503, "capacity")
            assert await used(client) == 1  # released by the runner at once
            assert set(orch.live_runners.runners["pod-0"].sessions) == {first.session_id}

            # Bad params: 400 before anything is created, and the reservation is given back at once (the
            # orchestrator reserved it before proxying the start).
            _, third = await client.reserve(url)
            status, body = await client.call(third, "/live-video-to-video", {"params": {"width": 64}})
            assert status == 400 and "width and height" in body["message"]
            assert await used(client) == 1
            assert set(orch.live_runners.runners["pod-0"].sessions) == {first.session_id}

            # Draining: running sessions go on, new ones are refused and released.
            assert (await rt.post("/drain"))[0] == 200
            assert (await client.call(first, "/stream/status", None, method="GET"))[0] == 200
            _, fourth = await client.reserve(url)
            status, body = await client.call(fourth, "/live-video-to-video", {"params": SMALL})
            assert (status, body["reason"]) == (503, "draining")
            assert set(orch.live_runners.runners["pod-0"].sessions) == {first.session_id}
            assert rt.worker.find(first.session_id).active


async def test_a_session_reaches_only_itself_through_the_proxy(make_orch, client_for, secret_file) -> None:
    orch = await make_orch()
    client = client_for(orch)
    async with (
        running_worker("passthrough", capacity=2) as rt,
        running_registrar(registrar_args(orch, rt.base_url, secret_file)),
    ):
        await eventually(lambda: client.runner(), 10, "client.runner()", interval=0.05)
        url = (await client.runner())["url"]
        _, mine = await client.reserve(url)
        _, other = await client.reserve(url)
        # Trickle URLs in the client's body are ignored: only the orchestrator's channels are used.
        status, job = await client.call(
            mine, "/live-video-to-video", {"params": SMALL, "subscribe_url": "http://127.0.0.1:1/steal"}
        )
        assert status == 200, job
        request = rt.worker.find(mine.session_id).request
        assert request.subscribe_url.endswith(f"{mine.session_id}-in") and request.publish_url.endswith("-out")

        hdr = {"X-Stream-Id": mine.session_id}
        assert (await client.call(other, "/stream/status", None, method="GET", headers=hdr))[0] == 404
        assert (await client.call(other, "/stream/params", {"x": 1}, headers=hdr))[0] == 404
        assert (await client.call(other, "/drain", {}))[0] == 403
        assert not rt.worker.draining and rt.worker.find(mine.session_id).active
        status, body = await client.call(mine, "/stream/status", None, method="GET")
        assert status == 200 and body["stream_id"] == mine.session_id

        # Without the orchestrator's headers the same worker is a plain BYOC worker.
        status, body = await rt.post("/stream/start", json={"params": SMALL})
        assert status == 400  # gateway_request_id is required outside a Live Runner session
        assert (await rt.post("/stream/start", json={}, headers={"Livepeer-Session-Id": "x"}))[0] == 400
