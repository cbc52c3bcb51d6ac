"""Graceful drain of real worker pods: the launcher runs the pods' preStop hooks before SIGTERM as the kubelet does,
the pods are the real runtime (and drain sidecar) processes, media goes through a real trickle server.

- a deleted pod refuses new streams at once, keeps its live stream until it ends, then exits;
- a stream still running at the end of a short grace ends with a stop event and its output closed;
- a rollout (maxUnavailable 1) interrupts no stream that ends within the grace;
- a user image drains through the drain-only sidecar.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.error
import urllib.request
from typing import Any

import aiohttp
import pytest
import yaml
from byoc_testenv import Cluster
from byoc_testenv.demo import advertised, router_health
from byoc_testenv.devstream import mpegts, sources
from byoc_testenv.gateway import Gateway, GatewayStream, NoOrchestrators
from byoc_testenv.launcher import Launcher
from byoc_testenv.orchestrator import OrchestratorProcess
from byoc_testenv.polling import eventually
from byoc_testenv.trickle import TrickleServer

from tests.runtime.support import Stream, publish

from .conftest import IMAGE, SECRET

pytestmark = [pytest.mark.cluster, pytest.mark.trickle]

PARAMS = {"width": 128, "height": 96, "max_framerate": 15}


def apply(cluster: Cluster, namespace: str, *manifests: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(manifests))


def byoc_worker(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    base = {"capability": {"name": f"drain-{name}"}, "gpu": {"count": 1}, "sessionsPerPod": 1}
    return {"apiVersion": "byoc.livepeer.org/v1alpha1", "kind": "BYOCWorker", "metadata": {"name": name},
            "spec": {**base, **spec}}  # fmt: skip


def worker_pods(launcher: Launcher, namespace: str, name: str, terminating: bool = False) -> dict[str, dict[str, Any]]:
    """Launched worker pods of BYOCWorker ``name`` ("ns/pod" -> launcher state), running or terminating."""
    return {
        k: v
        for k, v in launcher.state()["pods"].items()
        if k.startswith(f"{namespace}/{name}-") and not k.startswith(f"{namespace}/{name}-router-")
        and "worker" in v["containers"] and v["terminating"] == terminating
    }  # fmt: skip


def health(ip: str, port: int = 8000) -> dict[str, Any] | None:
    """The worker process's own /health on its pod IP, or None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://{ip}:{port}/health", timeout=5) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


async def ready_pod(launcher: Launcher, namespace: str, name: str) -> tuple[str, str]:
    """The (pod key, IP) of the one ready worker pod whose runtime answers."""

    def one() -> tuple[str, str] | None:
        pods = worker_pods(launcher, namespace, name)
        ready = [(k, v["ip"]) for k, v in pods.items() if all(c["ready"] for c in v["containers"].values())]
        return ready[0] if len(ready) == 1 and health(ready[0][1]) else None

    return await eventually(one, 240, f"a ready pod of {name}")


def last_pts(segments: list[bytes]) -> int:
    return max((pts for segment in segments for pts in mpegts.frame_pts(segment)), default=-1)


def caught_up(stream: GatewayStream, sent: list[bytes], slack_s: float) -> bool:
    """The output reaches the end of the input, but for ``slack_s``. A gateway leaves its input channel open when
    the source goes quiet: the worker's demuxer holds the last frames until bytes that follow them arrive, and the
    output segment in progress is complete (and read here) only at the next keyframe, so the output read stays a
    segment or so short of the input (the runtime speed issue's first point)."""
    return last_pts(stream.record.output) >= last_pts(sent) - round(mpegts.PTS_HZ * slack_s)


async def finished(stream: GatewayStream, sent: list[bytes], limit_s: float) -> None:
    """Input sent to its end and the output settled (within a segment of the input's end, or no new segment for
    5 s); it must have reached the input's last 3 s, so the stream flowed to the end. Then stopped at the
    orchestrator, as a gateway does once its client has left (a live source going quiet ends no stream)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(limit_s):
            while not stream.input_done:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            seen, changed = stream.output_segments, loop.time()
            while not caught_up(stream, sent, 1.5) and loop.time() - changed < 5:
                await asyncio.sleep(0.2)
                if stream.output_segments != seen:
                    seen, changed = stream.output_segments, loop.time()
    except TimeoutError:
        raise AssertionError(f"input not sent within {limit_s} s: {described(stream)}") from None
    got = (last_pts(stream.record.output), last_pts(sent), stream.output_segments)
    assert caught_up(stream, sent, 3.0), f"last out/in pts, segments: {got}; {described(stream)}"
    reply = await stream.stop()
    # Seen once under a loaded full run during the rollout: the stop got no 200 within the gateway's stop timeout,
    # though the stream was running and ended by this stop. What counts here is that it ran to the end.
    by_this_stop = stream.end is not None and stream.end.kind == "stopped"
    assert (reply is not None and reply.status == 200) or by_this_stop, (stream.stream_id, reply, stream.end)


def uninterrupted(stream: GatewayStream) -> bool:
    """One orchestrator session from start to the caller's stop: no gateway watchdog fired, no swap, and the
    worker never ended the stream itself."""
    reasons = [e.get("reason") for e in stream.events if e.get("type") == "stream_stopped"]
    return (
        len(stream.attempts) == 1
        and stream.end is not None
        and stream.end.kind == "stopped"
        and all(r == "stopped by request" for r in reasons)
    )


def described(stream: GatewayStream) -> tuple[Any, ...]:
    return stream.stream_id, stream.end, [e.get("type") for e in stream.events], stream.attempts


@pytest.mark.timeout(1200)
async def test_deleted_pod_and_rollout_keep_live_streams_until_they_end(
    e2e_cluster: Cluster, e2e_namespace: str, launcher: Launcher, orch: OrchestratorProcess, operator: Any
) -> None:
    ns, cluster, name = e2e_namespace, e2e_cluster, "dr"
    capability = f"drain-{name}"
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "orch"},
              "data": {"secret": base64.b64encode(SECRET.encode()).decode()}}  # fmt: skip
    spec = {
        "runtime": {"processor": "passthrough"},
        "replicas": 2,
        "drain": {"gracePeriodSeconds": 90},
        "registration": {"refreshSeconds": 5},
        "orchestrators": [orch.worker_ref("orch")],
    }
    await asyncio.to_thread(apply, cluster, ns, secret, byoc_worker(name, spec))
    await eventually(lambda: advertised(orch.url, capability) == 2, 240, "capacity 2 advertised")
    router = f"http://{name}-router.{ns}.svc:8080"
    await eventually(lambda: (h := router_health(launcher, router)) and h["pods"] == 2, 60, "the router to know 2 pods")
    segments = await asyncio.to_thread(sources.generated_segments, PARAMS["width"], PARAMS["height"], 20.0)

    async def start(gateway: Gateway, stream_id: str, input_segments: list[bytes]) -> GatewayStream:
        return await gateway.start_stream(
            capability, stream_id=stream_id, params=PARAMS, input_segments=input_segments, keep_output=True
        )

    async with Gateway([orch.url]) as gateway:
        # (a) The pod running a live stream is deleted.
        live = await start(gateway, "live", segments)
        await eventually(lambda: live.output_segments, 90, "output of the live stream")
        pods = worker_pods(launcher, ns, name)
        busy = next(k for k, v in pods.items() if (h := health(v["ip"])) and h["active_streams"] == 1)
        busy_ip = pods[busy]["ip"]
        await asyncio.to_thread(cluster.kubectl, "delete", "pod", "-n", ns, busy.split("/")[1], "--wait=false")
        # Its preStop hook runs first: it refuses new streams at once and the router places elsewhere.
        await eventually(lambda: (h := health(busy_ip)) and h["draining"], 30, "the deleted pod to drain")
        segments_at_drain = live.output_segments
        try:
            other: GatewayStream | None = await start(gateway, "after-delete", [])
        except NoOrchestrators:
            other = None  # the orchestrator was told 0 free slots already
        if other is not None:
            await asyncio.sleep(1)
            busy_health = health(busy_ip)
            assert busy_health and busy_health["active_streams"] == 1  # not placed on the draining pod
            await other.stop()
        assert busy in worker_pods(launcher, ns, name, terminating=True)  # still running its stream
        # The live stream keeps flowing until its input ends, then the pod goes.
        await finished(live, segments, 120)
        assert live.output_segments > segments_at_drain
        assert uninterrupted(live), described(live)
        ended = time.monotonic()
        await eventually(lambda: busy not in launcher.state()["pods"], 60, "the drained pod's processes to exit")
        assert time.monotonic() - ended < 60

        # (c) A rollout with maxUnavailable 1 while both pods run a stream that ends within the grace.
        await eventually(lambda: advertised(orch.url, capability) == 2, 240, "capacity 2 again")
        await eventually(lambda: (h := router_health(launcher, router)) and h["pods"] == 2, 60, "2 pods in router")
        before = set(worker_pods(launcher, ns, name))
        rolling = [await start(gateway, f"roll-{i}", segments) for i in range(2)]
        await eventually(lambda: all(s.output_segments for s in rolling), 90, "output of both streams")
        patch = {"spec": {"runtime": {"params": {"rollout": 2}}}}
        await asyncio.to_thread(cluster.kubectl, "patch", "-n", ns, f"byocworker/{name}", "--type=merge",
                                "-p", json.dumps(patch))  # fmt: skip
        for stream in rolling:
            await finished(stream, segments, 180)
        for stream in rolling:
            assert uninterrupted(stream), described(stream)

        def rolled_out() -> bool:
            pods = worker_pods(launcher, ns, name)
            return len(pods) == 2 and not (set(pods) & before) and not worker_pods(launcher, ns, name, True)

        await eventually(rolled_out, 300, "every pod replaced by the rollout")


async def test_stream_outliving_a_short_grace_ends_with_a_stop_event(
    e2e_cluster: Cluster, e2e_namespace: str, launcher: Launcher, trickle_server: TrickleServer, operator: Any
) -> None:
    """A plain worker (no registration, bundled runtime) with a 3 s grace and a stream whose input never ends."""
    ns, name = e2e_namespace, "short"
    spec = {"runtime": {"processor": "passthrough"}, "replicas": 1, "drain": {"gracePeriodSeconds": 3}}
    await asyncio.to_thread(apply, e2e_cluster, ns, byoc_worker(name, spec))
    key, ip = await ready_pod(launcher, ns, name)
    segments = await asyncio.to_thread(sources.generated_segments, PARAMS["width"], PARAMS["height"], 60.0)
    stream = Stream.create(trickle_server)
    stream.listen()
    feeding: asyncio.Task[None] | None = None
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://{ip}:8000/stream/start", json=stream.start_body(PARAMS)) as resp:
                assert resp.status == 200, await resp.text()
        feeding = asyncio.create_task(publish(stream.url(), segments, close=False))
        await eventually(lambda: stream.output, 90, "output")
        deleted = time.monotonic()
        await asyncio.to_thread(e2e_cluster.kubectl, "delete", "pod", "-n", ns, key.split("/")[1], "--wait=false")
        await stream.wait_output_closed(90)
        closed = time.monotonic() - deleted
        await eventually(lambda: "stream_stopped" in stream.event_types(), 10, "the stop event")
        await eventually(lambda: key not in launcher.state()["pods"], 60, "the pod's processes to exit")
    finally:
        if feeding is not None:
            feeding.cancel()
            await asyncio.gather(feeding, return_exceptions=True)
        await stream.close()
    reasons = stream.stop_reasons()
    assert reasons == ["drain grace period over"], stream.event_types()
    assert closed >= 2.5  # the stream ran through the grace, not cut at the deletion


async def test_user_image_drains_through_the_sidecar(
    e2e_cluster: Cluster, e2e_namespace: str, launcher: Launcher, trickle_server: TrickleServer, operator: Any
) -> None:
    """Our runtime started as a user container: it gets no drain grace of its own (SIGTERM stops it at once), so
    the stream ending by itself proves the drain-only sidecar's preStop held the SIGTERM back."""
    ns, name = e2e_namespace, "user"
    container = {"image": IMAGE, "command": ["byoc-runtime"], "port": 8000,
                 "env": [{"name": "BYOC_PROCESSOR", "value": "passthrough"}]}  # fmt: skip
    spec = {"container": container, "replicas": 1, "drain": {"gracePeriodSeconds": 90}}
    await asyncio.to_thread(apply, e2e_cluster, ns, byoc_worker(name, spec))
    key, ip = await ready_pod(launcher, ns, name)
    assert set(launcher.state()["pods"][key]["containers"]) == {"worker", "drain"}
    segments = await asyncio.to_thread(sources.generated_segments, PARAMS["width"], PARAMS["height"], 15.0)
    stream = Stream.create(trickle_server)
    stream.listen()
    feeding: asyncio.Task[None] | None = None
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://{ip}:8000/stream/start", json=stream.start_body(PARAMS)) as resp:
                assert resp.status == 200, await resp.text()
            feeding = asyncio.create_task(publish(stream.url(), segments))  # ends after ~15 s
            await eventually(lambda: stream.output, 90, "output")
            await asyncio.to_thread(e2e_cluster.kubectl, "delete", "pod", "-n", ns, key.split("/")[1], "--wait=false")
            # The sidecar asked the worker to drain (it has /drain); new streams are refused.
            await eventually(lambda: (h := health(ip)) and h["draining"], 30, "the worker to drain")
            other = Stream.create(trickle_server)
            async with http.post(f"http://{ip}:8000/stream/start", json=other.start_body(PARAMS)) as resp:
                assert resp.status == 503 and (await resp.json())["reason"] == "draining"
            await stream.wait_ended(120)  # a natural end: the output channel is left to its owner
            assert feeding.done()  # the input ended before the stream did
        await eventually(lambda: "stream_stopped" in stream.event_types(), 10, "the stop event")
        await eventually(lambda: key not in launcher.state()["pods"], 60, "the pod's processes to exit")
    finally:
        if feeding is not None:
            feeding.cancel()
            await asyncio.gather(feeding, return_exceptions=True)
        await stream.close()
    reasons = stream.stop_reasons()
    assert reasons == ["input ended"], stream.event_types()
