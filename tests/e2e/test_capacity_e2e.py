"""BYOC capacity on the real path: what the orchestrator tells gateways (``/process/token``'s
``available_capacity``, from a table that keeps go-livepeer's ``Load`` rules: reset by every registration, +1 per
start, -1 per end, nothing enforced) equals the free session slots the worker pods really have, through
refreshes, stream starts and ends, scaling up, an operator restart and deletion with a stream running. Streams are
started, updated and stopped by the test gateway, as go-livepeer's gateway does.

The pods are the real runtime and router processes (launcher); the truth is asked of each worker process itself.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import urllib.request
from pathlib import Path

import pytest
import yaml
from byoc_testenv import Cluster
from byoc_testenv.demo import capabilities, operator_process
from byoc_testenv.gateway import Gateway, GatewayStream
from byoc_testenv.launcher import Launcher
from byoc_testenv.orchestrator import OrchestratorProcess
from byoc_testenv.polling import eventually

from .conftest import IMAGE, SECRET

pytestmark = [pytest.mark.cluster, pytest.mark.trickle]

CAPABILITY = "e2e-capacity"
SESSIONS_PER_POD = 2
PARAMS = {"width": 128, "height": 96}
# A sender the offchain orchestrator accepts (any hex signature passes its offchain check).
SENDER = base64.b64encode(json.dumps({"addr": "0x" + "ab" * 20, "sig": "0x" + "cd" * 65}).encode()).decode()


def available(orch_url: str) -> int:
    """What a gateway is told: ``available_capacity`` of ``GET /process/token`` (absent means 0)."""
    req = urllib.request.Request(
        f"{orch_url}/process/token", headers={"Livepeer-Eth-Address": SENDER, "Livepeer-Capability": CAPABILITY}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return int(json.loads(resp.read()).get("available_capacity", 0))


def registrations(orch_url: str) -> int:
    history = capabilities(orch_url).get("history") or []
    return sum(1 for h in history if h.get("name") == CAPABILITY and h.get("action") == "register")


def free_slots(launcher: Launcher, namespace: str) -> int:
    """The truth: free slots on the worker pods that can take a stream (running, ready, not terminating), as
    each runtime process counts its own streams."""
    free = 0
    for key, pod in launcher.state()["pods"].items():
        if not key.startswith(f"{namespace}/cap-") or key.startswith(f"{namespace}/cap-router-"):
            continue
        worker = pod["containers"].get("worker")
        if pod["terminating"] or not worker or not worker["ready"]:
            continue
        with urllib.request.urlopen(f"http://{pod['ip']}:8000/health", timeout=5) as resp:
            free += max(0, SESSIONS_PER_POD - int(json.loads(resp.read())["active_streams"]))
    return free


def manifests(orch: OrchestratorProcess, replicas: int) -> str:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "orch"},
              "data": {"secret": base64.b64encode(SECRET.encode()).decode()}}  # fmt: skip
    worker = {
        "apiVersion": "byoc.livepeer.org/v1alpha1",
        "kind": "BYOCWorker",
        "metadata": {"name": "cap"},
        "spec": {
            "capability": {"name": CAPABILITY},
            "runtime": {"processor": "passthrough"},
            "replicas": replicas,
            "sessionsPerPod": SESSIONS_PER_POD,
            "gpu": {"count": 1},
            "drain": {"gracePeriodSeconds": 60},
            "registration": {"refreshSeconds": 5},
            "orchestrators": [orch.worker_ref("orch")],
        },
    }
    return yaml.safe_dump_all([secret, worker])


async def settled(orch_url: str, launcher: Launcher, ns: str, want: int, what: str) -> None:
    """The orchestrator's figure and the pods' free slots both reach `want`, and the orchestrator's figure
    survives the operator's next registrations (each of which resets its Load)."""
    await eventually(
        lambda: available(orch_url) == want and free_slots(launcher, ns) == want, 120, f"{what}: {want} free"
    )
    seen = registrations(orch_url)
    await eventually(lambda: registrations(orch_url) > seen, 30, f"{what}: the next registration")
    assert available(orch_url) == free_slots(launcher, ns) == want, what


async def test_advertised_capacity_is_the_free_slots_through_everything(
    e2e_cluster: Cluster, e2e_namespace: str, launcher: Launcher, orch: OrchestratorProcess, tmp_path: Path
) -> None:
    ns, cluster = e2e_namespace, e2e_cluster
    env = {"BYOC_RUNTIME_IMAGE": IMAGE, "BYOC_RESYNC_SECONDS": "2"}
    logs = [tmp_path / "operator.log"]
    operator = contextlib.ExitStack()
    operator.enter_context(operator_process(cluster, logs[-1], env))
    try:
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=manifests(orch, 2))
        await settled(orch.url, launcher, ns, 4, "two idle pods")

        async with Gateway([orch.url]) as gateway:

            async def start(stream_id: str) -> GatewayStream:
                # No input (enable_video_ingress off): these streams hold a slot until they are stopped.
                stream = await gateway.start_stream(CAPABILITY, stream_id=stream_id, params=PARAMS, video_ingress=False)
                await eventually(lambda: stream.attempts and stream.attempts[0].status, 60, f"{stream_id} answered")
                assert stream.attempts[0].status == 200 and stream.end is None, (stream.attempts, stream.end)
                return stream

            first = await start("cap-1")
            assert available(orch.url) == 3  # the orchestrator's own count, before any new registration
            await settled(orch.url, launcher, ns, 3, "one stream")  # the old design advertised 4 here
            second = await start("cap-2")
            await settled(orch.url, launcher, ns, 2, "two streams")

            stopped = await first.stop()
            assert stopped is not None and stopped.status == 200, stopped
            await settled(orch.url, launcher, ns, 3, "a stream ended")  # the old design advertised 5 here

            await asyncio.to_thread(cluster.kubectl, "scale", "-n", ns, "byocworker/cap", "--replicas=3")
            await settled(orch.url, launcher, ns, 5, "scaled up to 3 pods")

            # The operator restarts: it knows nothing, asks the routers, registers the same truth.
            operator.close()
            logs.append(tmp_path / "operator-2.log")
            operator.enter_context(operator_process(cluster, logs[-1], env))
            await settled(orch.url, launcher, ns, 5, "after an operator restart")

            # Deleted with a stream running: registered with no free slot until it ends, so the stream's
            # params and stop still reach it through the orchestrator (go-livepeer forgets an unregistered URL).
            await asyncio.to_thread(cluster.kubectl, "delete", "-n", ns, "byocworker/cap", "--wait=false")
            await eventually(lambda: available(orch.url) == 0, 60, "no free slot advertised while deleting")
            assert CAPABILITY in (capabilities(orch.url).get("capabilities") or {})
            updated = await second.update({"strength": 1})
            assert updated.status == 200, updated
            stopped = await second.stop()
            assert stopped is not None and stopped.status == 200, stopped
            # Ended by the stops, not by a gateway watchdog (events kept coming the whole time).
            assert first.end is not None and first.end.kind == "stopped", first.end
            assert second.end is not None and second.end.kind == "stopped", second.end
            await eventually(
                lambda: CAPABILITY not in (capabilities(orch.url).get("capabilities") or {}),
                60,
                "unregistered once no stream runs",
            )
        await eventually(lambda: not cluster.get("byocworker", namespace=ns)["items"], 90, "the worker gone")
    finally:
        operator.close()
        print("---- operator log (tail) ----\n" + "\n".join(logs[-1].read_text(errors="replace").splitlines()[-60:]))
