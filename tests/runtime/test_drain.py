"""Draining the runtime: the preStop ``GET /drain?wait=true`` refuses new streams and holds until live ones ended;
on SIGTERM, streams still running at the end of the drain grace end with a stop event and their output closed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from byoc_testenv.devstream.worker import WorkerProcess

from .support import Stream, publish, running_worker

pytestmark = pytest.mark.trickle

SMALL = {"width": 128, "height": 96, "max_framerate": 15}


async def test_prestop_drain_refuses_new_streams_and_waits_for_the_live_one(trickle_server, make_segments) -> None:
    segments = make_segments(seconds=6, audio_codec=None, width=128, height=96)
    async with running_worker("passthrough", capacity=2, drain_seconds=120) as rt:
        await rt.wait_health("IDLE")
        live = Stream.create(trickle_server)
        live.listen()
        status, body = await rt.post("/stream/start", json=live.start_body(SMALL))
        assert status == 200, body
        feeding = asyncio.create_task(publish(live.url(), segments))  # ends by itself after ~6 s
        try:
            async with asyncio.timeout(30):
                while not live.output:  # noqa: ASYNC110 (polling state)
                    await asyncio.sleep(0.1)
            hook = asyncio.create_task(rt.get("/drain?wait=true"))  # what the kubelet's preStop does
            await asyncio.sleep(0.5)
            assert not hook.done()
            health = (await rt.get("/health"))[1]
            assert health["draining"] and health["available"] == 0 and health["active_streams"] == 1
            other = Stream.create(trickle_server)
            status, body = await rt.post("/stream/start", json=other.start_body(SMALL))
            assert (status, body["reason"]) == (503, "draining")
            # The live stream keeps flowing until its input ends; only then does the hook answer.
            at_drain = len(live.output)
            status, body = await asyncio.wait_for(hook, 60)
            assert (status, body["drained"], body["active_streams"]) == (200, True, 0)
            assert feeding.done()
            assert len(live.output) > at_drain
            await live.wait_ended()
        finally:
            feeding.cancel()
            await asyncio.gather(feeding, return_exceptions=True)
            await live.close()
    assert live.stop_reasons() == ["input ended"]


async def test_drain_through_an_orchestrator_proxy_is_refused() -> None:
    async with running_worker("passthrough", drain_seconds=5) as rt:
        status, body = await rt.get("/drain?wait=true", headers={"Livepeer-Session-Id": "x"})
        assert status == 403 and not rt.worker.draining, body


async def test_sigterm_ends_streams_at_the_grace_with_a_stop_event_and_closed_output(
    trickle_server, make_segments, tmp_path: Path
) -> None:
    """A real byoc-runtime process: the input never ends, so the drain grace (3 s) runs out."""
    segments = make_segments(seconds=40, audio_codec=None, width=128, height=96)
    worker = WorkerProcess.runtime("passthrough", tmp_path / "runtime.log", "--capacity", "2", "--drain-seconds", "3")
    await asyncio.to_thread(worker.start)
    streams = [Stream.create(trickle_server), Stream.create(trickle_server)]
    feeding: list[asyncio.Task[None]] = []
    try:
        async with aiohttp.ClientSession() as http:
            for stream in streams:
                stream.listen()
                async with http.post(f"{worker.url}/stream/start", json=stream.start_body(SMALL)) as resp:
                    assert resp.status == 200, await resp.text()
                feeding.append(asyncio.create_task(publish(stream.url(), segments, close=False)))
        async with asyncio.timeout(60):
            while not all(s.output for s in streams):  # noqa: ASYNC110 (polling state)
                await asyncio.sleep(0.1)
        assert worker.proc is not None
        worker.proc.send_signal(signal.SIGTERM)
        # Both streams go on through the grace, then end: a stream_stopped event saying why, output closed.
        for stream in streams:
            await stream.wait_output_closed(60)
        code = await asyncio.to_thread(worker.proc.wait, 60)
        assert code == 0, worker.log_tail()
        await asyncio.sleep(0.5)  # the events reader sees the last message
    finally:
        for task in feeding:
            task.cancel()
        await asyncio.gather(*feeding, return_exceptions=True)
        for stream in streams:
            await stream.close()
        worker.stop()
    for stream in streams:
        assert stream.stop_reasons() == ["drain grace period over"], stream.event_types()
        assert stream.event_types()[-2:] == ["stream_stopped", "status"]
        assert len(stream.output) >= 3  # it kept running for the grace (1 s segments)
    assert "drain grace over: stopping 2 sessions" in worker.log_tail(60)


async def drain_from(rt, source: str, **headers: str) -> int:
    """POST /drain from ``source``, as a caller on that address would."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.post(rt.base_url + "/drain", headers=headers) as resp:
            return resp.status


@pytest.mark.parametrize("token", [None, "s3cret"])
async def test_drain_is_only_for_the_pod_itself_or_a_caller_with_the_token(token: str | None) -> None:
    # Draining is for good: any other pod reaching the port must not take this one out of service (review M1).
    async with running_worker("passthrough", listen="127.0.0.2", token=token) as rt:
        assert await drain_from(rt, "127.0.0.3") == 403  # another host
        assert await drain_from(rt, "127.0.0.3", Authorization="Bearer wrong") == 403
        assert not rt.worker.draining
        if token:
            assert await drain_from(rt, "127.0.0.3", Authorization=f"Bearer {token}") == 200
        else:
            assert await drain_from(rt, "127.0.0.2") == 200  # the pod calling its own address (its registrar)
        assert rt.worker.draining


async def test_the_prestop_exec_hook_drains_over_loopback() -> None:
    async with running_worker("passthrough", drain_seconds=5) as rt:
        port = rt.base_url.rsplit(":", 1)[1]
        env = {**os.environ, "BYOC_PORT": port}
        hook = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "byoc_runtime.drain", env=env, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(hook.communicate(), 30)
        assert hook.returncode == 0 and json.loads(out)["drained"] is True
        assert rt.worker.draining
