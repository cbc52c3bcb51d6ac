"""``byoc-registrar`` as its own process next to a real runtime worker, with a Live Runner session streaming:
SIGTERM drains (new sessions refused, the running one goes on), then unregisters and exits 0 once it ended."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

import aiohttp
import pytest
from byoc_runtime import trickle
from byoc_testenv.polling import eventually, free_port

from tests.liverunner.support import APP, SECRET, media_segments
from tests.runtime.support import publish, running_worker

pytestmark = pytest.mark.trickle

SMALL = {"width": 128, "height": 96, "max_framerate": 15}


async def count_output(url: str, counter: list[int]) -> None:
    async with aiohttp.ClientSession() as http:
        with contextlib.suppress(trickle.TrickleError):
            async with trickle.Subscriber(url, session=http) as sub:
                async for segment in sub:
                    with contextlib.suppress(trickle.SegmentError):
                        await segment.read()
                        counter[0] += 1


async def test_sigterm_drains_then_unregisters(make_orch, trickle_server, client_for) -> None:
    # Made before anything runs: encoding 30 s of media blocks this loop, which serves the orchestrator too.
    source = media_segments(seconds=30, audio_codec=None)
    orch = await make_orch(trickle_base_url=trickle_server.base_url, heartbeat_ttl=2.0)
    client = client_for(orch)
    async with running_worker("grayscale", capacity=2) as rt:
        env = {**os.environ, "ORCH_SECRET": SECRET, "POD_IP": "127.0.0.1", "POD_NAME": "pod-cli"}
        cmd = [
            sys.executable, "-m", "byoc_runtime.registrar", "--orchestrator", orch.url, "--app", APP,
            "--worker-url", rt.base_url, "--port", str(free_port()), "--probe-interval", "0.1",
            "--log-format", "text", "--log-level", "DEBUG",
        ]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            *cmd, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        stderr = asyncio.create_task(proc.stderr.read())  # type: ignore[union-attr]
        feeding: asyncio.Task[None] | None = None
        reader: asyncio.Task[None] | None = None
        try:
            await eventually(lambda: client.runner(), 30, "client.runner()", interval=0.05)
            runner = await client.runner()
            assert runner["capacity"] == 2  # from the worker's /health
            hb_secret = orch.live_runners.runners["pod-cli"].heartbeat_secret
            assert orch.live_runners.runners["pod-cli"].fields["runner_url"] == rt.base_url

            _, session = await client.reserve(runner["url"])
            status, job = await client.call(session, "/live-video-to-video", {"params": SMALL})
            assert status == 200, job
            produced = [0]
            reader = asyncio.create_task(count_output(job["subscribe_url"], produced))
            feeding = asyncio.create_task(publish(job["publish_url"], source, close=False))
            await eventually(
                lambda: produced[0] >= 1, 45, "produced[0] >= 1", interval=0.05
            )  # a loaded machine is slow to start

            proc.send_signal(signal.SIGTERM)
            await eventually(lambda: rt.worker.draining, 5, "rt.worker.draining", interval=0.05)
            # Still "ready" (a non-ready runner would break the session), with no room for another.
            await eventually(
                lambda: orch.live_runners.runners["pod-cli"].fields["capacity"] == 1,
                5,
                "orch.live_runners.runners['pod-cli'].fields['capacity'] == 1",
                interval=0.05,
            )
            listed = await client.runner()
            assert listed is not None and listed["capacity_available"] == 0
            assert (await client.reserve(runner["url"]))[0] == 503
            status, body = await rt.post("/stream/start", json={"gateway_request_id": "direct", "params": SMALL})
            assert (status, body["reason"]) == (503, "draining")

            # The running session goes on.
            at_sigterm = produced[0]
            await eventually(lambda: produced[0] >= at_sigterm + 2, 15, "produced[0] >= at_sigterm + 2", interval=0.05)
            assert proc.returncode is None and rt.worker.find(session.session_id).active

            # It ends: the registrar unregisters and exits.
            assert await client.stop(session) == 204
            assert await asyncio.wait_for(proc.wait(), 15) == 0
            assert await client.runner() is None and "pod-cli" not in orch.live_runners.runners
            assert orch.live_runners.removed[-1]["reason"] == "unregister"
        finally:
            for task in (feeding, reader):
                if task is not None:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        logs = (await stderr).decode()
    assert "unregistered runner pod-cli" in logs and "draining" in logs
    assert SECRET not in logs and hb_secret not in logs
