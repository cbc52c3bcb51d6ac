"""A BYOCWorker end to end: applied -> real pods -> registered -> streams through gateway, orchestrator, router and
runtime -> scaled -> deleted. Nothing is faked past the kwok nodes: the runtime and router pods are the real
programs (run by the launcher on their pod IPs), Services and DNS are emulated by the launcher, media goes through
a real trickle server, and the streams are driven by the test gateway (byoc_testenv.gateway) with go-livepeer's
timings and watchdogs."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import urllib.request
from typing import Any

import pytest
import yaml
from byoc_testenv import Cluster
from byoc_testenv.demo import advertised, grayness, matched_frames, play_through, router_health, worker_streams
from byoc_testenv.devstream.sources import generated_segments
from byoc_testenv.gateway import Gateway, GatewayStream, NoOrchestrators
from byoc_testenv.launcher import Launcher
from byoc_testenv.orchestrator import OrchestratorProcess
from byoc_testenv.polling import eventually

from .conftest import SECRET

pytestmark = [pytest.mark.cluster, pytest.mark.trickle]

CAPABILITY = "e2e-grayscale"
PARAMS = {"width": 256, "height": 144}


def apply(cluster: Cluster, manifest: dict[str, Any], namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))


def worker_manifest(orch: OrchestratorProcess) -> dict[str, Any]:
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
            "orchestrators": [orch.worker_ref("orch")],
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
    apply(cluster, worker_manifest(orch), ns)

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
    streams: list[GatewayStream] = []

    async def start(stream_id: str) -> GatewayStream:
        return await gateway.start_stream(
            CAPABILITY, stream_id=stream_id, params=PARAMS, input_segments=segments, keep_output=True
        )

    async with Gateway([orch.url]) as gateway:
        try:
            # 1: gateway -> orchestrator -> ClusterIP (launcher proxy) -> router pod -> worker pod -> trickle -> back.
            first = await start("e2e-1")
            streams.append(first)
            assert await play_through(first, first_output_timeout=90), (first.attempts, first.end)
            frames = await asyncio.to_thread(matched_frames, first, segments)
            assert frames is not None, launcher.logs(next(iter(worker_pods(launcher, ns))))
            source, frame = frames
            assert (frame.width, frame.height) == (PARAMS["width"], PARAMS["height"])
            assert grayness(frame) < 3, grayness(frame)
            assert grayness(source) > 20  # the input was colour, the worker made it gray
            assert first.attempts[0].status == 200 and first.end is None
            assert sorted(streams_per_pod(launcher, ns).values()) == [0, 1]

            # 2: the other pod (one session each), also processed.
            second = await start("e2e-2")
            streams.append(second)
            assert await play_through(second, first_output_timeout=90), (second.attempts, second.end)
            assert sorted(streams_per_pod(launcher, ns).values()) == [1, 1]

            # 3: every slot taken. The orchestrator advertises none (the operator registers free slots: the gateway
            # finds no orchestrator), or a registration still counting a slot lets it be chosen and it passes on the
            # router's 503; the gateway then finds the channels closed and, with no other orchestrator, ends it.
            try:
                third = await start("e2e-3")
            except NoOrchestrators:
                pass
            else:
                end = await asyncio.wait_for(third.ended(), 60)
                refused = third.attempts[0]
                assert refused.status == 503 and json.loads(refused.body)["reason"] == "capacity", refused
                assert end.kind == "exhausted" and third.output_segments == 0, end

            # Scale: a third pod starts, answers its probe, and its free slot is advertised and used.
            await asyncio.to_thread(cluster.kubectl, "scale", "-n", ns, "byocworker/gray", "--replicas=3")
            await eventually(lambda: advertised(orch.url, CAPABILITY) == 1, 180, "the new pod's free slot advertised")

            async def third_starts() -> GatewayStream | None:
                try:
                    attempt = await start("e2e-3")
                except NoOrchestrators:
                    return None
                if await play_through(attempt, first_output_timeout=60):
                    return attempt
                await attempt.stop()
                return None

            streams.append(await eventually(third_starts, 120, "a third stream placed on the new pod", interval=2))
            assert sorted(streams_per_pod(launcher, ns).values()) == [1, 1, 1]
            assert all(s.end is None for s in streams)  # events and output kept every gateway watchdog quiet
        finally:
            for stream in streams:
                reply = await stream.stop()
                assert reply is not None and reply.status == 200, (stream.stream_id, reply, stream.end)
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
