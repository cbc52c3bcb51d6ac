"""A BYOCWorker end to end: applied -> real pods -> registered -> streams through orchestrator, router and runtime
-> scaled -> deleted. Nothing is faked past the kwok nodes: the runtime and router pods are the real programs
(run by the launcher on their pod IPs), Services and DNS are emulated by the launcher, and media goes through a
real trickle server."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import urllib.request
from typing import Any

import aiohttp
import pytest
import yaml
from byoc_testenv import Cluster
from byoc_testenv.demo import (
    OrchestratedStream,
    advertised,
    grayness,
    output_frame,
    play,
    router_health,
    start_stream,
    stop_stream,
    worker_streams,
)
from byoc_testenv.devstream import decode_frame, generated_segments
from byoc_testenv.launcher import Launcher
from byoc_testenv.orchestrator import OrchestratorProcess

from .conftest import SECRET, eventually

pytestmark = [pytest.mark.cluster, pytest.mark.trickle]

CAPABILITY = "e2e-grayscale"
PARAMS = {"width": 256, "height": 144}


def apply(cluster: Cluster, manifest: dict[str, Any], namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))


def worker_manifest(orch_url: str) -> dict[str, Any]:
    return {
        "apiVersion": "byoc.livepeer.org/v1alpha1",
        "kind": "BYOCWorker",
        "metadata": {"name": "gray"},
        "spec": {
            "capability": {"name": CAPABILITY},
            "runtime": {"processor": "grayscale"},
            "replicas": 2,
            "sessionsPerPod": 1,
            "gpu": {"count": 1},
            "registration": {"refreshSeconds": 5},
            "orchestrators": [{"url": orch_url, "secretRef": {"name": "orch"}}],
        },
    }


def worker_pods(launcher: Launcher, namespace: str) -> dict[str, dict[str, Any]]:
    """Launched worker pods (not routers, not terminating) of the namespace: "ns/name" -> launcher state."""
    return {
        k: v
        for k, v in launcher.state()["pods"].items()
        if not v["terminating"] and k.startswith(f"{namespace}/gray-") and not k.startswith(f"{namespace}/gray-router-")
    }


def streams_per_pod(launcher: Launcher, namespace: str) -> dict[str, int]:
    """Each worker pod's own count of running streams, asked of the process on its pod IP."""
    streams = worker_streams(launcher, namespace)
    assert set(streams) == set(worker_pods(launcher, namespace))
    return streams


def listening(ip: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((ip, port)) == 0


def pid_alive(pid: int) -> str | None:
    """What /proc says about a process still there (state and command line), or None."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    return f"{pid} {stat.rsplit(')', 1)[1].split()[0]} {cmdline}"


async def test_worker_registers_streams_scales_and_goes(
    e2e_cluster: Cluster, e2e_namespace: str, launcher: Launcher, orch: OrchestratorProcess, operator: Any
) -> None:
    ns, cluster = e2e_namespace, e2e_cluster
    apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "orch"},
            "data": {"secret": base64.b64encode(SECRET.encode()).decode()},
        },
        ns,
    )
    apply(cluster, worker_manifest(orch.url), ns)

    # Registered at 2 = two pods whose processes answered their readiness probes.
    await eventually(lambda: advertised(orch.url, CAPABILITY) == 2, 240, "capacity 2 advertised")
    url = (
        await asyncio.to_thread(
            lambda: json.loads(urllib.request.urlopen(f"{orch.url}/_test/capabilities", timeout=5).read())
        )
    )["capabilities"][CAPABILITY]["url"]
    assert url == f"http://gray-router.{ns}.svc:8080"
    pods = worker_pods(launcher, ns)
    assert len(pods) == 2 and all(
        c["state"] == "running" and c["ready"] for p in pods.values() for c in p["containers"].values()
    ), pods
    pids = [
        c["pid"]
        for key, p in launcher.state()["pods"].items()
        if key.startswith(f"{ns}/")
        for c in p["containers"].values()
    ]
    assert len(pids) == 4  # two workers, two routers
    # The router learns the pods from the launcher's stand-in for the headless Service's DNS.
    await eventually(lambda: (h := router_health(launcher, url)) and h["pods"] == 2, 60, "the router to know 2 pods")

    segments = await asyncio.to_thread(generated_segments, PARAMS["width"], PARAMS["height"], 3.0)
    streams: list[OrchestratedStream] = []
    async with aiohttp.ClientSession() as http:
        try:
            # 1: orchestrator -> ClusterIP (launcher proxy) -> router pod -> worker pod -> trickle -> back here.
            first = await start_stream(http, orch.url, CAPABILITY, "e2e-1", PARAMS)
            assert first.status == 200, first.reply
            streams.append(first)
            await play(http, first, segments, first_output_timeout=90)
            assert first.frames_out > 0, launcher.logs(next(iter(worker_pods(launcher, ns))))
            frame = await asyncio.to_thread(output_frame, first)
            assert frame is not None and (frame.width, frame.height) == (PARAMS["width"], PARAMS["height"])
            assert grayness(frame) < 3, grayness(frame)
            source = await asyncio.to_thread(decode_frame, segments, frame.pts)
            assert source is not None and grayness(source) > 20  # the input was colour, the worker made it gray
            assert sorted(streams_per_pod(launcher, ns).values()) == [0, 1]

            # 2: the other pod (one session each), also processed.
            second = await start_stream(http, orch.url, CAPABILITY, "e2e-2", PARAMS)
            assert second.status == 200, second.reply
            streams.append(second)
            await play(http, second, segments[:2], first_output_timeout=90)
            assert second.frames_out > 0
            assert sorted(streams_per_pod(launcher, ns).values()) == [1, 1]

            # 3: every slot taken -> the router's 503, passed on by the orchestrator.
            third = await start_stream(http, orch.url, CAPABILITY, "e2e-3", PARAMS)
            assert third.status == 503, third.reply
            assert json.loads(third.reply)["reason"] == "capacity"

            # Scale: a third pod starts, answers its probe, and is advertised and used.
            await asyncio.to_thread(cluster.kubectl, "scale", "-n", ns, "byocworker/gray", "--replicas=3")
            await eventually(lambda: advertised(orch.url, CAPABILITY) == 3, 180, "capacity 3 advertised")

            async def third_starts() -> OrchestratedStream | None:
                attempt = await start_stream(http, orch.url, CAPABILITY, "e2e-3", PARAMS)
                return attempt if attempt.status == 200 else None

            streams.append(await eventually(third_starts, 60, "a third stream placed on the new pod", interval=2))
            assert sorted(streams_per_pod(launcher, ns).values()) == [1, 1, 1]
        finally:
            for stream in streams:
                assert await stop_stream(http, orch.url, stream.stream_id) == 200
    await eventually(lambda: sum(streams_per_pod(launcher, ns).values()) == 0, 30, "every stream stopped")

    # Delete: unregistered first (finalizer), then the pods go and the launcher stops their processes.
    ips = [p["ip"] for p in worker_pods(launcher, ns).values()]
    await asyncio.to_thread(cluster.kubectl, "delete", "-n", ns, "byocworker/gray", "--timeout=120s", timeout=150)
    assert advertised(orch.url, CAPABILITY) is None
    await eventually(
        lambda: not [k for k in launcher.state()["pods"] if k.startswith(f"{ns}/")],
        90,
        "the launcher to stop every process of the worker",
    )
    assert not [ip for ip in ips if listening(ip, 8000)]
    assert not [alive for pid in pids if (alive := pid_alive(pid))]
