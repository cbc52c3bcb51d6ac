"""The built-in autoscaler on real pods: it counts the sessions each runtime process reports, scales up at once,
scales down only after the delay and only idle pods (busy ones carry a pod-deletion-cost), and says so in status
and Events."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
import yaml
from byoc_testenv import Cluster
from byoc_testenv.launcher import Launcher
from byoc_testenv.polling import eventually
from byoc_testenv.trickle import TrickleServer

from tests.runtime.support import Stream

pytestmark = [pytest.mark.cluster, pytest.mark.trickle]

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
SMALL = {"width": 128, "height": 96}


def worker(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "byoc.livepeer.org/v1alpha1",
        "kind": "BYOCWorker",
        "metadata": {"name": name},
        "spec": {
            "runtime": {"processor": "passthrough"},
            "sessionsPerPod": 1,
            "gpu": {"count": 0},
            "drain": {"gracePeriodSeconds": 5},
            "autoscaling": {
                "minReplicas": 1,
                "maxReplicas": 3,
                "targetBusyPercent": 50,
                "scaleDownDelaySeconds": 4,
                "periodSeconds": 1,
            },
        },
    }


def get(cluster: Cluster, kind: str, name: str, ns: str) -> dict[str, Any]:
    return json.loads(cluster.kubectl("get", kind, name, "-n", ns, "-o", "json").stdout)


def pods(cluster: Cluster, ns: str) -> dict[str, dict[str, Any]]:
    """Live worker pods (not terminating) by name."""
    items = json.loads(
        cluster.kubectl("get", "pods", "-n", ns, "-l", "app.kubernetes.io/component=worker", "-o", "json").stdout
    )["items"]
    return {p["metadata"]["name"]: p for p in items if not p["metadata"].get("deletionTimestamp")}


def ready_ips(cluster: Cluster, ns: str) -> dict[str, str]:
    out = {}
    for name, pod in pods(cluster, ns).items():
        conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
        if conditions.get("Ready") == "True" and pod["status"].get("podIP"):
            out[name] = pod["status"]["podIP"]
    return out


def ready_n(cluster: Cluster, ns: str, n: int) -> dict[str, str] | None:
    ips = ready_ips(cluster, ns)
    return ips if len(ips) == n else None


def reasons(cluster: Cluster, ns: str) -> list[str]:
    events = json.loads(cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
    return [e["reason"] for e in events if e["involvedObject"]["kind"] == "BYOCWorker"]


async def start(http: aiohttp.ClientSession, ip: str, stream: Stream) -> None:
    stream.listen()
    async with http.post(f"http://{ip}:8000/stream/start", json=stream.start_body(SMALL)) as resp:
        assert resp.status == 200, await resp.text()


async def stop(http: aiohttp.ClientSession, ip: str, stream: Stream) -> None:
    async with http.post(f"http://{ip}:8000/stream/stop", headers={"X-Stream-Id": stream.sid}) as resp:
        assert resp.status == 200, await resp.text()


async def test_replicas_follow_sessions_and_busy_pods_are_kept(
    e2e_cluster: Cluster, e2e_namespace: str, launcher: Launcher, trickle_server: TrickleServer, operator: Any
) -> None:
    ns, cluster = e2e_namespace, e2e_cluster
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(worker("auto")))
    first = await eventually(lambda: list(ready_ips(cluster, ns).items()), 180, "the first pod ready")
    (a_pod, a_ip) = first[0]
    await eventually(lambda: get(cluster, "bw", "auto", ns)["status"].get("sessions") == 0, 60, "sessions 0")

    a, b = Stream.create(trickle_server, "a"), Stream.create(trickle_server, "b")
    async with aiohttp.ClientSession() as http:
        try:
            # One stream on one slot: 100% busy against a 50% target -> 2 pods, at once.
            await start(http, a_ip, a)
            await eventually(lambda: get(cluster, "bw", "auto", ns)["spec"]["replicas"] == 2, 60, "scale up to 2")
            await eventually(
                lambda: (pods(cluster, ns)[a_pod]["metadata"].get("annotations") or {}).get(DELETION_COST) == "1",
                30,
                "the busy pod marked with a deletion cost",
            )
            ips = await eventually(lambda: ready_n(cluster, ns, 2), 180, "2 ready")
            (b_pod,) = [p for p in ips if p != a_pod]

            # A second stream: 2 busy slots need 4 pods at 50%; the ceiling is 3.
            await start(http, ips[b_pod], b)
            await eventually(lambda: get(cluster, "bw", "auto", ns)["spec"]["replicas"] == 3, 60, "scale up to 3")
            await eventually(lambda: len(ready_ips(cluster, ns)) == 3, 180, "3 ready")
            status = get(cluster, "bw", "auto", ns)["status"]
            assert status["sessions"] == 2 and status.get("lastScaleTime"), status

            # B ends: 1 busy slot needs 2 pods; after the delay one IDLE pod goes, never A's.
            await stop(http, ips[b_pod], b)
            await eventually(lambda: get(cluster, "bw", "auto", ns)["spec"]["replicas"] == 2, 60, "scale down to 2")
            await eventually(lambda: len(pods(cluster, ns)) == 2, 60, "2 pods left")
            assert a_pod in pods(cluster, ns)
            health = await (await http.get(f"http://{a_ip}:8000/health")).json()
            assert health["active_streams"] == 1, health

            # A ends too: down to the minimum.
            await stop(http, a_ip, a)
            await eventually(lambda: get(cluster, "bw", "auto", ns)["spec"]["replicas"] == 1, 60, "scale down to 1")
        finally:
            await a.close()
            await b.close()
    assert {"ScaledUp", "ScaledDown"} <= set(reasons(cluster, ns))
