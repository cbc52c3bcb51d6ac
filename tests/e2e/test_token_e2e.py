"""The worker token end to end: a BYOCWorker with ``registration.tokenSecretRef`` registers its token with the
(test) orchestrator, which sends it back as ``Authorization: Bearer``; the router and the pod, real processes
reading the token Secret the launcher mounts as a file, accept that and refuse callers without it. Rotating the
Secret re-registers the new token and the mounted files follow, so streams work again with no restart; the old
token stays valid for a grace, so no call meets a 401 window. The token never shows in the BYOCWorker's status,
Events or the operator's log."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from byoc_testenv import Cluster
from byoc_testenv.demo import advertised, capabilities, grayness, matched_frames, play_through, router_health
from byoc_testenv.devstream.sources import generated_segments
from byoc_testenv.gateway import Gateway, GatewayStream
from byoc_testenv.launcher import Launcher
from byoc_testenv.orchestrator import OrchestratorProcess
from byoc_testenv.polling import eventually

from .conftest import SECRET

pytestmark = [pytest.mark.cluster, pytest.mark.trickle]

CAPABILITY = "e2e-token"
PARAMS = {"width": 256, "height": 144}
FIRST, SECOND = "tok-first-6c1e0b7a", "tok-second-93d4f2e8"


def secret(name: str, key: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "data": {key: base64.b64encode(value.encode()).decode()},
    }


def worker(orch: OrchestratorProcess) -> dict[str, Any]:
    return {
        "apiVersion": "byoc.livepeer.org/v1alpha1",
        "kind": "BYOCWorker",
        "metadata": {"name": "tok"},
        "spec": {
            "capability": {"name": CAPABILITY},
            "runtime": {"processor": "grayscale"},
            "replicas": 1,
            "sessionsPerPod": 2,
            "gpu": {"count": 1},
            "registration": {"refreshSeconds": 5, "tokenSecretRef": {"name": "worker-token", "key": "token"}},
            "orchestrators": [orch.worker_ref("orch")],
        },
    }


async def post_start(http: aiohttp.ClientSession, base: str, token: str | None) -> tuple[int, Any]:
    """A stream start straight to a router or pod (no orchestrator): the status and JSON reply."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.post(f"{base}/stream/start", json={}, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def stream_through_orchestrator(orch_url: str, stream_id: str, segments: list[bytes]) -> GatewayStream:
    """A stream as go-livepeer's gateway runs it (test gateway), through the orchestrator, which sends the token."""
    async with Gateway([orch_url]) as gateway:
        stream = await gateway.start_stream(
            CAPABILITY, stream_id=stream_id, params=PARAMS, input_segments=segments, keep_output=True
        )
        try:
            assert await play_through(stream, first_output_timeout=90), (stream.attempts, stream.end)
            assert stream.end is None, stream.end  # no 401 made the orchestrator drop it, no watchdog fired
            frames = await asyncio.to_thread(matched_frames, stream, segments)
            assert frames is not None and grayness(frames[1]) < 3  # processed by the worker, read back
        finally:
            reply = await stream.stop()
            assert reply is not None and reply.status == 200, (reply, stream.end)
    return stream


def registered_token(orch_url: str) -> str | None:
    """The token the test orchestrator holds for the capability (its test-only view of the registration)."""
    cap = (capabilities(orch_url).get("capabilities") or {}).get(CAPABILITY)
    return cap["token"] if cap else None


async def test_token_from_secret_guards_router_and_pod_and_rotates(
    e2e_cluster: Cluster, e2e_namespace: str, launcher: Launcher, orch: OrchestratorProcess, operator: Path
) -> None:
    ns, cluster = e2e_namespace, e2e_cluster

    def apply(*manifests: dict[str, Any]) -> None:
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(manifests))

    apply(secret("orch", "secret", SECRET), secret("worker-token", "token", FIRST), worker(orch))
    await eventually(lambda: advertised(orch.url, CAPABILITY) == 2, 240, "capacity 2 (1 pod x 2) advertised")
    assert registered_token(orch.url) == FIRST
    url = capabilities(orch.url)["capabilities"][CAPABILITY]["url"]
    await eventually(lambda: (h := router_health(launcher, url)) and h["pods"] == 1, 90, "the router to know its pod")
    (router_ip,) = launcher.resolve(f"tok-router.{ns}.svc")
    router = f"http://{router_ip}:8080"
    (pod_key,) = [
        k for k, v in launcher.state()["pods"].items()
        if k.startswith(f"{ns}/tok-") and "worker" in v["containers"] and not v["terminating"]
    ]
    pod = f"http://{launcher.state()['pods'][pod_key]['ip']}:8000"

    segments = await asyncio.to_thread(generated_segments, PARAMS["width"], PARAMS["height"], 6.0)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        # Through the orchestrator, which sends the registered token: router and pod let it through.
        await stream_through_orchestrator(orch.url, "tok-1", segments)

        # Straight to the router and the pod: no token, or a wrong one, is a 401 that says why.
        for base in (router, pod):
            status, reply = await post_start(http, base, None)
            assert status == 401 and reply["reason"] == "unauthorized", (base, reply)
            assert "missing bearer token" in reply["message"], reply
            status, reply = await post_start(http, base, "not-the-token")
            assert status == 401 and "invalid bearer token" in reply["message"], (base, reply)
            status, reply = await post_start(http, base, FIRST)
            assert status != 401, (base, reply)  # past the token check (the empty body is its own error)

        # Rotate: the launcher rewrites the mounted files and the router and pod re-read them, keeping the old
        # token valid for a while; the operator registers the new one once it had time to reach them (shortened
        # here by BYOC_TOKEN_PROPAGATION_SECONDS), so the orchestrator's calls never meet a 401.
        apply(secret("worker-token", "token", SECOND))

        async def both_tokens_pass() -> bool:
            return all([(await post_start(http, base, t))[0] != 401 for base in (router, pod) for t in (FIRST, SECOND)])

        await eventually(both_tokens_pass, 90, "router and pod to take the new token, the old one still valid")
        await eventually(lambda: registered_token(orch.url) == SECOND, 90, "the new token registered")
        await eventually(lambda: (h := router_health(launcher, url)) and h["pods"] == 1, 90, "the router's pod")
        await eventually(lambda: advertised(orch.url, CAPABILITY) == 2, 60, "capacity advertised again")
        await stream_through_orchestrator(orch.url, "tok-2", segments)
        status, reply = await post_start(http, pod, "not-the-token")
        assert status == 401 and "invalid bearer token" in reply["message"], reply

    # The token is in no status, event or operator log line (nor in what the launcher writes about pods).
    status = json.dumps(cluster.get("byocworker", "tok", namespace=ns).get("status"))
    events = json.dumps(cluster.get("events", namespace=ns)["items"])
    assert "Registered" in events  # the events are there to look at
    for where, text in (
        ("status", status),
        ("events", events),
        ("operator log", await asyncio.to_thread(operator.read_text, errors="replace")),
        ("launcher log", launcher.read_log()),
        ("launcher state", json.dumps(launcher.state())),
    ):
        for token in (FIRST, SECOND):
            assert token not in text, f"the token appears in the {where}"
