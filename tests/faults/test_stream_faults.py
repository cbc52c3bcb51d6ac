"""Faults under a running stream, with real router and runtime processes (the launcher) and a real trickle server:
the routers restarted mid-stream, and the trickle server restarted mid-stream.

Routers: the stream keeps flowing (media never goes through them), they re-learn which pod runs it from the pods,
and no slot is handed out twice. Trickle server: the worker ends the session by itself (no leaked session, its slot
free again) and new streams work once the server is back."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from byoc_testenv import Cluster
from byoc_testenv.demo import play, router_health, start_stream, stop_stream, worker_streams
from byoc_testenv.devstream.sources import generated_segments
from byoc_testenv.launcher import Launcher
from byoc_testenv.orchestrator import OrchestratorProcess
from byoc_testenv.polling import eventually, wait_for
from byoc_testenv.pytest_plugin import namespace_name
from byoc_testenv.trickle import TrickleServer, find_go

from .support import SECRET, advertised, apply_secret, apply_worker

pytestmark = [pytest.mark.cluster, pytest.mark.trickle]

CAP = "fault-stream"
PARAMS = {"width": 256, "height": 144}


@pytest.fixture(scope="module")
def trickle() -> Iterator[TrickleServer]:
    """Its own server: this module restarts it."""
    if find_go() is None:
        pytest.fail("no Go toolchain to build the trickle server (set BYOC_TESTENV_GO)")
    with TrickleServer.start() as server:
        yield server


@pytest.fixture(scope="module")
def stream_orch(trickle: TrickleServer, launcher: Launcher) -> Iterator[OrchestratorProcess]:
    with OrchestratorProcess.start(
        secret=SECRET, trickle_base_url=trickle.base_url, hosts_file=launcher.hosts_file
    ) as proc:
        yield proc


@pytest.fixture(scope="module")
def streaming(
    faults_cluster: Cluster, launcher: Launcher, operator: Any, stream_orch: OrchestratorProcess
) -> Iterator[str]:
    """A registered grayscale worker: two runtime pods with one session each, behind two routers."""
    ns = faults_cluster.create_namespace(namespace_name("stream-faults"))
    apply_secret(faults_cluster, ns, "orch", SECRET)
    spec = {
        "capability": {"name": CAP},
        "runtime": {"processor": "grayscale"},
        "replicas": 2,
        "sessionsPerPod": 1,
        "gpu": {"count": 0},
        "registration": {"refreshSeconds": 5},
        "orchestrators": [stream_orch.worker_ref("orch")],
    }
    apply_worker(faults_cluster, ns, "gray", spec)
    wait_for(lambda: (advertised(stream_orch.url, CAP) or {}).get("capacity") == 2, 240, what="capacity 2")
    url = advertised(stream_orch.url, CAP)["url"]
    wait_for(lambda: (h := router_health(launcher, url)) and h["pods"] == 2, 60, what="the routers to know 2 pods")
    yield ns
    faults_cluster.delete_namespace(ns, wait=False)


def routers(launcher: Launcher, namespace: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in launcher.state()["pods"].items() if k.startswith(f"{namespace}/gray-router-")}


def worker_token(cluster: Cluster, namespace: str) -> str:
    """The token the operator generated for the worker (no tokenSecretRef): routers and pods want it."""
    data = json.loads(cluster.kubectl("get", "secret", "gray-token", "-n", namespace, "-o", "json").stdout)["data"]
    return base64.b64decode(data["token"]).decode()


def pinned_status(ip: str, stream_id: str, token: str) -> dict[str, Any]:
    """The stream's status through one router replica, asked of it directly: a pinned call, answered by the
    session on the pod the replica believes runs it (404 when it knows of no such stream)."""
    headers = {"X-Stream-Id": stream_id, "Authorization": f"Bearer {token}"}
    req = urllib.request.Request(f"http://{ip}:8080/stream/status", headers=headers)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def health_of(launcher: Launcher, namespace: str) -> dict[str, Any]:
    """Every router's and worker's /health, by pod (for failure messages)."""
    out: dict[str, Any] = {}
    for key, entry in launcher.state()["pods"].items():
        if key.startswith(f"{namespace}/"):
            port = 8080 if "router" in entry["containers"] else 8000
            try:
                with urllib.request.urlopen(f"http://{entry['ip']}:{port}/health", timeout=5) as resp:
                    out[key] = json.loads(resp.read())
            except OSError as exc:
                out[key] = repr(exc)
    return out


def sessions(launcher: Launcher, namespace: str, token: str) -> dict[str, list[str]]:
    """The stream ids each worker pod runs, by pod (for failure messages)."""
    out = {}
    for key, entry in launcher.state()["pods"].items():
        if key.startswith(f"{namespace}/") and "worker" in entry["containers"]:
            req = urllib.request.Request(
                f"http://{entry['ip']}:8000/stream/status", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(req, timeout=5) as resp:
                out[key] = [s.get("gateway_request_id") for s in json.loads(resp.read()).get("sessions", [])]
    return out


def busy(launcher: Launcher, namespace: str) -> list[int]:
    return sorted(worker_streams(launcher, namespace).values())


async def test_routers_restarted_mid_stream(
    faults_cluster: Cluster, streaming: str, launcher: Launcher, stream_orch: OrchestratorProcess
) -> None:
    ns, orch_url = streaming, stream_orch.url
    segments = await asyncio.to_thread(generated_segments, PARAMS["width"], PARAMS["height"], 8.0)
    old = {k: v["containers"]["router"] for k, v in routers(launcher, ns).items()}
    assert len(old) == 2 and all(c["ready"] for c in old.values())
    async with aiohttp.ClientSession() as http:
        a = await start_stream(http, orch_url, CAP, "rr-a", PARAMS)
        assert a.status == 200, a.reply
        try:
            killed: list[float] = []

            async def kill_routers_once_output_flows() -> None:
                await eventually(lambda: a.out is not None and a.frames_out > 0, 90, "the first output frames")
                for router in old.values():
                    os.kill(router["pid"], signal.SIGKILL)  # both replicas: no survivor keeps the pins
                killed.append(time.monotonic())

            killer = asyncio.create_task(kill_routers_once_output_flows())
            await play(http, a, segments, first_output_timeout=90)
            await killer
            # Media never passes the routers: output kept coming after they died.
            assert [t for t in a.out.frame_published.values() if t > killed[0] + 1.0], "no output after the kill"

            def restarted() -> dict[str, dict[str, Any]] | None:
                now = {k: v["containers"]["router"] for k, v in routers(launcher, ns).items()}
                fresh = all(c["ready"] and c["restarts"] >= 1 and c["pid"] != old[k]["pid"] for k, c in now.items())
                return now if now.keys() == old.keys() and fresh else None

            await eventually(restarted, 90, "both routers restarted and ready")
            # Each restarted replica finds rr-a again (from the pods' own stream lists) and reaches its pod.
            for router in routers(launcher, ns).values():
                token = await asyncio.to_thread(worker_token, faults_cluster, ns)
                status = await asyncio.to_thread(pinned_status, router["ip"], "rr-a", token)
                assert status["stream_id"] == "rr-a" and status["segments_out"] > 0, status

            # No slot handed out twice: the next stream lands on the other pod, the third finds no slot.
            b = await start_stream(http, orch_url, CAP, "rr-b", PARAMS)
            assert b.status == 200, (b.reply, health_of(launcher, ns))
            assert await asyncio.to_thread(busy, launcher, ns) == [1, 1]
            c = await start_stream(http, orch_url, CAP, "rr-c", PARAMS)
            assert c.status == 503 and json.loads(c.reply)["reason"] == "capacity", c.reply
        finally:
            for sid in ("rr-a", "rr-b"):
                await stop_stream(http, orch_url, sid)
    # The stops were pinned calls through the restarted routers: each reached the pod running its stream.
    await eventually(lambda: busy(launcher, ns) == [0, 0], 60, "every session stopped")


async def test_trickle_server_restarted_mid_stream(
    faults_cluster: Cluster,
    streaming: str,
    launcher: Launcher,
    stream_orch: OrchestratorProcess,
    trickle: TrickleServer,
) -> None:
    ns, orch_url = streaming, stream_orch.url
    segments = await asyncio.to_thread(generated_segments, PARAMS["width"], PARAMS["height"], 3.0)
    async with aiohttp.ClientSession() as http:
        a = await start_stream(http, orch_url, CAP, "tr-a", PARAMS)
        assert a.status == 200, a.reply
        await play(http, a, segments, first_output_timeout=90)
        assert a.frames_out > 0
        assert await asyncio.to_thread(busy, launcher, ns) == [0, 1], await asyncio.to_thread(
            sessions, launcher, ns, worker_token(faults_cluster, ns)
        )

        await asyncio.to_thread(trickle.restart)  # every channel of the stream is gone
        # The worker notices (its subscriber and publisher find the channels gone) and ends the session itself.
        await eventually(lambda: busy(launcher, ns) == [0, 0], 120, "the worker to end the orphaned session")
        url = advertised(orch_url, CAP)["url"]
        await eventually(
            lambda: (h := router_health(launcher, url)) and h["available"] == 2 and h,
            60,
            "the routers to see both slots free",
        )
        await stop_stream(http, orch_url, "tr-a")  # what a gateway does once its stream died

        # The server is back: a new stream goes through end to end.
        b = await start_stream(http, orch_url, CAP, "tr-b", PARAMS)
        assert b.status == 200, b.reply
        try:
            await play(http, b, segments, first_output_timeout=90)
            assert b.frames_out > 0
        finally:
            await stop_stream(http, orch_url, "tr-b")
    await eventually(lambda: busy(launcher, ns) == [0, 0], 60, "every session stopped")
