"""The test orchestrator's BYOC stream routes as a gateway calls them (signed ``Livepeer`` header), against go-livepeer
``byoc/stream_orchestrator.go``: header checks, channels per flag, the worker call, the reply, stop and update, the
stream monitor and the silent ``RemoveStream``."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from byoc_testenv.local_http import serving
from byoc_testenv.orchestrator import TestOrchestrator
from byoc_testenv.orchestrator.jobs import NO_TIMEOUT

from .conftest import SECRET

pytestmark = pytest.mark.trickle

SIG = "0x" + "cd" * 65  # what an on-chain gateway sends; off-chain any hex verifies
FLAGS = {"enable_video_ingress": True, "enable_video_egress": True}


def job(stream_id: str = "s1", **fields: Any) -> str:
    data = {
        "id": stream_id,
        "request": json.dumps({"stream_id": stream_id}),
        "parameters": json.dumps(FLAGS),
        "capability": "cartoon",
        "sender": "0xabc",
        "sig": SIG,
        "timeout_seconds": 5,
        **fields,
    }
    return base64.b64encode(json.dumps(data).encode()).decode()


async def register(http: aiohttp.ClientSession, orch: TestOrchestrator, url: str, token: str = "") -> None:
    body = {"name": "cartoon", "url": url, "capacity": 2, "token": token}
    async with http.post(orch.url + "/capability/register", json=body, headers={"Authorization": SECRET}) as r:
        assert r.status == 200


async def post(
    http: aiohttp.ClientSession, orch: TestOrchestrator, route: str, header: str | None, body: Any = None
) -> tuple[int, str, Any]:
    headers = {"Livepeer": header} if header is not None else {}
    data = body if isinstance(body, bytes) else json.dumps({"params": {}} if body is None else body).encode()
    async with http.post(orch.url + route, data=data, headers={**headers, "Content-Type": "application/json"}) as r:
        return r.status, await r.text(), r.headers


def load(orch: TestOrchestrator) -> int:
    return orch.capabilities.capabilities["cartoon"].load


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Could not verify job creds"),  # no header: empty JSON
        ("%%%", "Could not verify job creds"),  # not base64
        (job(timeout_seconds=0), "no timeout_seconds set with request, timeout_seconds is required"),
        (job(timeout_seconds="5"), "Could not verify job creds"),  # Go: a string for an int
        (job(sig="0x"), "Could not verify job creds"),  # "0x" is not cut (<= 130 characters): not hex
        (job(capability="nobody"), "No capacity available for capability"),
    ],
)
async def test_start_refuses_bad_headers(http, orch, make_pod, header, message):
    pod = await make_pod()
    await register(http, orch, pod.url)
    status, text, _ = await post(http, orch, "/ai/stream/start", header)
    assert (status, text) == (400, message + "\n")
    assert not pod.calls("/stream/start") and load(orch) == 0


async def test_start_failures_that_keep_the_reservation(http, orch, make_pod):
    # Upstream returns before its cleanup is armed: the capacity reserved by setupOrchJob is never freed.
    await register(http, orch, (await make_pod()).url)
    status, text, _ = await post(http, orch, "/ai/stream/start", job(request="not json"))
    assert status == 400 and text.startswith("Unable to unmarshal job request details err=")
    status, text, _ = await post(http, orch, "/ai/stream/start", job(parameters=""))
    assert (status, text) == (400, "unexpected end of JSON input\n")
    assert load(orch) == 2


async def test_start_creates_channels_per_flag_and_answers_empty(http, orch, make_pod, trickle_server):
    pod = await make_pod()
    await register(http, orch, pod.url, token="tok")
    header = job("d1", parameters=json.dumps({"enable_data_output": True}))
    status, text, headers = await post(http, orch, "/ai/stream/start", header, {"params": {"a": 1}, "extra": "x"})
    assert (status, text) == (200, "")
    base = trickle_server.base_url
    assert {k: v for k, v in headers.items() if k.startswith("X-") and k.endswith("-Url")} == {
        "X-Control-Url": base + "d1-control",
        "X-Events-Url": base + "d1-events",
        "X-Data-Url": base + "d1-data",
    }
    assert headers["Livepeer-Balance"] == "0"
    (call,) = pod.calls("/stream/start")
    assert call.json() == {
        "gateway_request_id": "d1",
        "control_url": base + "d1-control",
        "events_url": base + "d1-events",
        "data_url": base + "d1-data",
        "params": {"a": 1},
        "extra": "x",  # the incoming body is merged as it is
    }
    assert call.headers["X-Stream-Id"] == "d1" and call.headers["Authorization"] == "Bearer tok"
    assert load(orch) == 1 and "d1" in orch.byoc_streams.streams


async def test_start_with_a_bad_body_closes_its_channels(http, orch, make_pod, trickle_server):
    pod = await make_pod()
    await register(http, orch, pod.url)
    status, text, headers = await post(http, orch, "/ai/stream/start", job("b1"), b"[1, 2]")
    assert (status, text) == (400, "Invalid JSON body\n")
    assert headers["X-Control-Url"] == trickle_server.base_url + "b1-control"  # set before the check
    async with http.get(trickle_server.base_url + "b1-control/0") as r:
        assert r.status == 404
    assert load(orch) == 0 and not pod.calls("/stream/start")


async def test_update_and_stop_go_to_the_worker(http, orch, make_pod, trickle_server):
    pod = await make_pod()
    await register(http, orch, pod.url, token="tok")
    assert (await post(http, orch, "/ai/stream/start", job("u1")))[0] == 200
    # X-Stream-Id comes from request.stream_id, not from the job id.
    update = job("", request=json.dumps({"stream_id": "u1"}), parameters="")
    status, text, _ = await post(http, orch, "/ai/stream/update", update, {"prompt": "b"})
    assert status == 200 and json.loads(text)["status"] == "success"
    (params,) = pod.calls("/stream/params")
    assert params.json() == {"prompt": "b"} and params.headers["X-Stream-Id"] == "u1"
    assert params.headers["Content-Type"] == "application/json" and params.headers["Authorization"] == "Bearer tok"

    status, _, _ = await post(http, orch, "/ai/stream/stop", update, b"stream ended")
    assert status == 200
    (stop,) = pod.calls("/stream/stop")
    assert stop.body == b"stream ended" and stop.headers["X-Stream-Id"] == "u1"
    assert "Content-Type" not in stop.headers  # Go sets none
    assert load(orch) == 0 and "u1" not in orch.byoc_streams.streams
    async with http.get(trickle_server.base_url + "u1-control/0") as r:
        assert r.status == 404  # closed with the stream
    status, text, _ = await post(http, orch, "/ai/stream/stop", job(timeout_seconds=0))
    assert status == 400
    assert text == "Failed to stop stream, request not valid err=" + NO_TIMEOUT + "\n"


async def test_stop_waits_for_the_worker_no_longer_than_the_job_timeout(http, orch):
    hung = asyncio.Event()

    async def slow_stop(request: web.Request) -> web.Response:
        hung.set()
        await asyncio.sleep(30)
        return web.Response()

    async def start(request: web.Request) -> web.Response:
        return web.json_response({"status": "success"})

    app = web.Application()
    app.router.add_post("/stream/start", start)
    app.router.add_post("/stream/stop", slow_stop)
    async with serving(app) as worker_url:
        await register(http, orch, worker_url)
        assert (await post(http, orch, "/ai/stream/start", job("t1")))[0] == 200
        began = time.monotonic()
        status, text, _ = await post(http, orch, "/ai/stream/stop", job("t1", timeout_seconds=1))
        assert (status, text) == (200, "")  # the default answer when the worker gave none
        assert hung.is_set() and time.monotonic() - began < 10
        assert "t1" not in orch.byoc_streams.streams and load(orch) == 0


async def test_silent_remove_closes_channels_without_calling_the_worker(http, orch, make_pod, trickle_server):
    pod = await make_pod()
    await register(http, orch, pod.url)
    assert (await post(http, orch, "/ai/stream/start", job("r1")))[0] == 200
    async with http.post(orch.url + "/_test/byoc/stream/remove", json={"stream_id": "r1"}) as r:
        assert await r.json() == {"removed": True}
    for suffix in ("", "-out", "-control", "-events"):
        async with http.get(trickle_server.base_url + f"r1{suffix}/0") as r:
            assert r.status == 404, suffix
    assert not pod.calls("/stream/stop") and load(orch) == 0  # the monitor freed the capacity
    async with http.post(orch.url + "/_test/byoc/stream/remove", json={"stream_id": "r1"}) as r:
        assert await r.json() == {"removed": False}


async def test_monitor_quits_when_the_capability_goes(http, make_orch, make_pod):
    orch = await make_orch(monitor_interval=0.05)
    pod = await make_pod(capacity=2)
    await register(http, orch, pod.url)
    assert (await post(http, orch, "/ai/stream/start", job("m1")))[0] == 200
    assert (await post(http, orch, "/ai/stream/start", job("m2")))[0] == 200
    await register(http, orch, pod.url)  # re-registered: Load 0 with both streams running
    assert (await post(http, orch, "/ai/stream/stop", job("m1")))[0] == 200
    assert load(orch) == -1  # m1's monitor freed on the new entry, as upstream

    async with http.post(orch.url + "/capability/unregister", data="cartoon", headers={"Authorization": SECRET}):
        pass
    monitor = orch.byoc_streams.streams["m2"].monitor
    assert monitor is not None
    await asyncio.wait_for(asyncio.shield(monitor), 5)  # a tick found the capability gone: it quit
    await register(http, orch, pod.url)
    assert (await post(http, orch, "/ai/stream/stop", job("m2")))[0] == 200
    assert load(orch) == 0  # nobody freed m2's slot on the new entry
