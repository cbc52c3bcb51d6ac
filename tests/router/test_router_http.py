"""The router over real HTTP, in front of fake worker pods (``fake_pod.py``: pytrickle's and our runtime's API)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from pathlib import Path
from typing import Any

import aiohttp
from byoc_edge.router.pods import DnsPods, FilePods, StaticPods

from .fake_pod import FakePod


async def start(
    http: aiohttp.ClientSession, router: Any, stream_id: str, header: bool = True, **headers: str
) -> tuple[int, Any]:
    hdrs = {"X-Stream-Id": stream_id} if header else {}
    hdrs.update(headers)
    body = {"gateway_request_id": stream_id, "subscribe_url": "http://t/in", "params": {"width": 64, "height": 64}}
    async with http.post(router.url + "/stream/start", json=body, headers=hdrs) as r:
        return r.status, await r.json()


async def call(http: aiohttp.ClientSession, router: Any, method: str, path: str, stream_id: str | None, **kw: Any):
    headers = {"X-Stream-Id": stream_id} if stream_id else {}
    async with http.request(method, router.url + path, headers=headers, **kw) as r:
        return r.status, await r.json()


def holder(pods: list[FakePod], stream_id: str) -> FakePod:
    (pod,) = [p for p in pods if stream_id in p.streams]
    return pod


async def test_starts_fill_every_slot_then_503(http, make_pod, make_router):
    pods = [await make_pod(capacity=1), await make_pod(capacity=1)]
    router = await make_router(pods, sessions_per_pod=1)
    assert (await start(http, router, "s1"))[0] == 200
    assert (await start(http, router, "s2"))[0] == 200
    assert {holder(pods, "s1").url, holder(pods, "s2").url} == {p.url for p in pods}
    status, body = await start(http, router, "s3")
    assert status == 503
    assert (body["reason"], body["capacity"], body["active_streams"], body["pods"]) == ("capacity", 2, 2, 2)
    assert all(len(p.streams) == 1 for p in pods)


async def test_spreads_streams(http, make_pod, make_router):
    pods = [await make_pod(capacity=2), await make_pod(capacity=2)]
    router = await make_router(pods, sessions_per_pod=2)
    results = await asyncio.gather(*(start(http, router, f"s{i}") for i in range(4)))
    assert [r[0] for r in results] == [200] * 4
    assert sorted(len(p.streams) for p in pods) == [2, 2]


async def test_pinned_calls_follow_the_stream(http, make_pod, make_router):
    pods = [await make_pod(capacity=2), await make_pod(capacity=2)]
    router = await make_router(pods, sessions_per_pod=2)
    for sid in ("s1", "s2", "s3"):
        await start(http, router, sid)
    pod = holder(pods, "s2")
    other = next(p for p in pods if p is not pod)
    assert (await call(http, router, "POST", "/stream/params", "s2", json={"prompt": "x"}))[0] == 200
    assert pod.streams["s2"].params["prompt"] == "x"
    status, body = await call(http, router, "GET", "/stream/status", "s2")
    assert status == 200 and body["stream_id"] == "s2"
    assert (await call(http, router, "POST", "/api/stream/stop", "s2"))[0] == 200
    assert "s2" not in pod.streams and router.router.pins.get("s2") is None
    assert not [c for c in other.calls("/stream/params") + other.calls("/stream/stop")]
    status, body = await call(http, router, "POST", "/stream/stop", "s2")
    assert (status, body["reason"]) == (404, "unknown_stream")
    status, body = await call(http, router, "GET", "/stream/status", None)  # no stream named: the router's view
    assert body["active_streams"] == 2 and {s["stream_id"] for s in body["sessions"]} == {"s1", "s3"}
    assert sorted(p["url"] for p in body["pods"]) == sorted(p.url for p in pods)


async def test_gateway_request_id_when_no_header(http, make_pod, make_router):
    pods = [await make_pod(capacity=1), await make_pod(capacity=1)]
    router = await make_router(pods)
    assert (await start(http, router, "g1", header=False))[0] == 200
    pod = holder(pods, "g1")
    assert (await call(http, router, "POST", "/stream/params?stream_id=g1", None, json={"a": 1}))[0] == 200
    assert pod.calls("/stream/params")[0].headers["X-Stream-Id"] == "g1"  # added for the pod
    async with http.post(router.url + "/stream/start", json={"params": {}}) as r:
        assert (r.status, (await r.json())["reason"]) == (400, "no_stream_id")


async def test_single_stream_needs_no_id(http, make_pod, make_router):
    pods = [await make_pod()]
    router = await make_router(pods)
    assert (await call(http, router, "POST", "/stream/stop", None))[0] == 400  # nothing runs
    await start(http, router, "only")
    assert (await call(http, router, "POST", "/stream/stop", None))[0] == 200  # a PyTrickle-style caller
    assert not pods[0].streams


async def test_repeated_start_goes_to_the_same_pod(http, make_pod, make_router):
    pods = [await make_pod(capacity=2), await make_pod(capacity=2)]
    router = await make_router(pods, sessions_per_pod=2)
    await start(http, router, "s1")
    pod = holder(pods, "s1")
    status, body = await start(http, router, "s1")
    assert status == 200 and body["message"] == "Stream already running"
    assert len(pod.calls("/stream/start")) == 2 and sum(len(p.streams) for p in pods) == 1


async def test_pytrickle_pods(http, make_pod, make_router):
    pods = [await make_pod(flavour="pytrickle"), await make_pod(flavour="pytrickle")]
    router = await make_router(pods)
    assert (await start(http, router, "a"))[0] == 200 and (await start(http, router, "b"))[0] == 200
    assert (await start(http, router, "c"))[0] == 503
    # A repeated start of a running stream is its pod's to answer (PyTrickle: 503), never a second copy.
    pod = holder(pods, "a")
    status, body = await start(http, router, "a")
    assert status == 503 and body["message"] == "Pipeline is still in use"
    assert [len(p.calls("/stream/start")) for p in pods].count(1) == 1  # the other pod saw only "b"
    # A new router learns which pod runs which stream from /stream/status (current_params).
    fresh = await make_router(pods)
    assert fresh.router.pins.get("a") == pod.url
    assert (await call(http, fresh, "POST", "/stream/stop", "a"))[0] == 200 and not pod.streams


async def test_restart_recovers_running_streams(http, make_pod, make_router):
    pods = [await make_pod(capacity=2), await make_pod(capacity=2)]
    first = await make_router(pods, sessions_per_pod=2)
    for sid in ("s1", "s2", "s3"):
        await start(http, first, sid)
    await first.close()
    second = await make_router(pods, sessions_per_pod=2)  # knows nothing but the pods
    assert {k for p in second.router.pins for k in p.keys} == {"s1", "s2", "s3"}
    assert (await call(http, second, "POST", "/stream/params", "s3", json={"z": 1}))[0] == 200
    assert holder(pods, "s3").streams["s3"].params["z"] == 1
    assert (await start(http, second, "s4"))[0] == 200
    assert (await start(http, second, "s5"))[0] == 503  # 4 slots, 4 streams: the restart lost no slot either


async def test_two_replicas_never_double_book(http, make_pod, make_router):
    pods = [await make_pod(capacity=1, start_delay=0.05), await make_pod(capacity=1, start_delay=0.05)]
    a, b = await make_router(pods), await make_router(pods)
    results = await asyncio.gather(*(start(http, (a, b)[i % 2], f"s{i}") for i in range(6)))
    statuses = [r[0] for r in results]
    assert statuses.count(200) == 2 and statuses.count(503) == 4
    assert all(len(p.streams) == 1 for p in pods)
    # A stop reaching the replica that did not place the stream still finds it.
    placed_by_a = next(f"s{i}" for i, r in enumerate(results) if r[0] == 200)
    for replica in (a, b):
        if replica.router.pins.get(placed_by_a) is None:
            assert (await call(http, replica, "POST", "/stream/stop", placed_by_a))[0] == 200
            break
    else:
        assert (await call(http, b, "POST", "/stream/stop", placed_by_a))[0] == 200
    assert sum(len(p.streams) for p in pods) == 1


async def test_stream_ended_on_its_own_frees_the_slot(http, make_pod, make_router):
    pods = [await make_pod(capacity=1)]
    router = await make_router(pods)
    await start(http, router, "s1")
    pods[0].streams.clear()  # input ended: the pod dropped the stream itself
    assert (await start(http, router, "s2"))[0] == 200
    assert router.router.pins.get("s1") is None


async def test_unreachable_pods(http, make_pod, make_router):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    live = await make_pod()
    router = await make_router(StaticPods([dead, live.url]))
    assert (await start(http, router, "s1"))[0] == 200 and "s1" in live.streams
    await live.close()
    status, body = await call(http, router, "POST", "/stream/params", "s1", json={})
    assert (status, body["reason"]) == (502, "pod_unreachable")
    status, body = await start(http, router, "s2")
    assert (status, body["reason"]) == (503, "unreachable")
    assert body["refusals"] == [{"status": None, "reason": "unreachable"}] * 2


async def test_refusals_name_no_pod_address_and_no_exception_text(http, make_pod, make_router, caplog):
    """Security review L3: go-livepeer passes a worker's error body on to the gateway, so the router's own
    refusals carry a fixed text and a reason; the pod and the error are in the router's log only."""
    caplog.set_level(logging.INFO)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    full, slow, live = await make_pod(), await make_pod(start_delay=1.0), await make_pod()
    router = await make_router([full], start_timeout=0.3)
    assert (await start(http, router, "s1"))[0] == 200
    replies = [await start(http, router, "s2")]  # full: 503 capacity, with the pod's 503 among the refusals
    await full.close()
    replies.append(await call(http, router, "POST", "/stream/stop", "s1"))  # 502: its pod went away
    for pods in ([dead], [slow], [live]):
        router = await make_router(StaticPods([p if isinstance(p, str) else p.url for p in pods]), start_timeout=0.3)
        if pods == [live]:
            await live.close()  # known to the router, gone when the stream call comes
        replies.append(await start(http, router, "s3"))
    assert [(status, body["reason"]) for status, body in replies] == [
        (503, "capacity"),
        (502, "pod_unreachable"),
        (503, "unreachable"),
        (504, "pod_timeout"),
        (503, "unreachable"),
    ]
    for _, body in replies:
        assert body["status"] == "error" and body["message"]
        text = json.dumps(body)
        assert "127.0.0.1" not in text and "Error" not in text and "http://" not in text, body
    assert dead in caplog.text or any(dead in str(vars(r)) for r in caplog.records)  # the detail is logged


async def test_start_that_timed_out_is_not_retried_elsewhere(http, make_pod, make_router):
    slow = await make_pod(capacity=2, start_delay=1.0)
    spare = await make_pod(capacity=1)
    router = await make_router([slow, spare], sessions_per_pod=2, start_timeout=0.3)
    status, body = await start(http, router, "s1")
    assert (status, body["reason"]) == (504, "pod_timeout")
    assert not spare.calls("/stream/start")  # the slow pod may still start it: no second copy


async def test_bad_request_is_not_retried(http, make_pod, make_router):
    pods = [await make_pod(), await make_pod()]
    router = await make_router(pods)
    async with http.post(router.url + "/stream/start", data="x", headers={"X-Stream-Id": "s1"}) as r:
        assert r.status == 400
    assert sum(len(p.calls("/stream/start")) for p in pods) == 1


async def test_loading_pods_refuse(http, make_pod, make_router):
    pods = [await make_pod(loading=True)]
    router = await make_router(pods)
    status, body = await start(http, router, "s1")
    assert status == 503 and body["refusals"][0]["status"] == 503
    pods[0].loading = False
    assert (await start(http, router, "s1"))[0] == 200


async def test_bearer_token(http, make_pod, make_router):
    pods = [await make_pod(token="tok")]
    router = await make_router(pods, token="tok")
    status, body = await start(http, router, "s1")
    assert (status, body["reason"]) == (401, "unauthorized") and not pods[0].calls("/stream/start")
    assert (await start(http, router, "s1", Authorization="Bearer tok"))[0] == 200
    assert all(c.headers.get("Authorization") == "Bearer tok" for c in pods[0].calls("/stream/status"))
    assert pods[0].calls("/stream/status")  # polled with the token, so the pod's load is known
    async with http.get(router.url + "/health") as r:
        assert r.status == 200  # not a stream route


async def test_health_and_metrics(http, make_pod, make_router):
    pods = [await make_pod(capacity=2)]
    router = await make_router(pods, sessions_per_pod=2)
    async with http.get(router.url + "/health") as r:
        assert await r.json() == {"status": "IDLE", "active_streams": 0, "capacity": 2, "available": 2, "pods": 1}
    await start(http, router, "s1")
    async with http.get(router.url + "/health") as r:
        health = await r.json()
    assert (health["status"], health["available"]) == ("OK", 1)
    async with http.get(router.url + "/metrics") as r:
        text = await r.text()
    assert 'byoc_router_starts_total{result="placed"} 1.0' in text and "byoc_router_streams 1.0" in text
    async with http.get(router.url + "/version") as r:
        assert (await r.json())["model_id"] == "fake"  # informational routes come from a pod


async def test_pod_leaving_the_source_keeps_its_streams(http, make_pod, make_router, tmp_path: Path):
    x, y = await make_pod(capacity=2), await make_pod(capacity=1)
    listing = tmp_path / "pods"
    listing.write_text(f"{x.url}\n{y.url}\n")
    router = await make_router(FilePods(listing), sessions_per_pod=2)
    await start(http, router, "s1")
    assert "s1" in x.streams  # the pod with the most free slots
    listing.write_text(f"{y.url}\n")
    await router.router.refresh_pods()
    assert (await start(http, router, "s2"))[0] == 200 and "s2" in y.streams
    assert (await start(http, router, "s3"))[0] == 503  # x takes no new streams ...
    assert (await call(http, router, "POST", "/stream/params", "s1", json={"k": 1}))[0] == 200  # ... but serves s1
    assert (await call(http, router, "POST", "/stream/stop", "s1"))[0] == 200
    await router.router.refresh_pods()
    assert list(router.router.pods) == [y.url]


async def test_headless_service_dns(http, make_pod, make_router):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pods = [await make_pod(host="127.0.0.1", port=port), await make_pod(host="127.0.0.2", port=port)]

    async def resolver(host: str, port_: int, type: int) -> list[tuple]:
        assert host == "workers.default.svc.cluster.local"
        return [(socket.AF_INET, type, 6, "", (ip, port_)) for ip in ("127.0.0.2", "127.0.0.1")]

    source = DnsPods(f"workers.default.svc.cluster.local:{port}", resolver=resolver)
    router = await make_router(source)
    assert sorted(router.router.pods) == sorted(p.url for p in pods)
    assert (await start(http, router, "s1"))[0] == 200 and (await start(http, router, "s2"))[0] == 200
    assert all(len(p.streams) == 1 for p in pods)


async def test_token_file_rotation_without_restart(http, make_pod, make_router, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("old\n")
    pods = [await make_pod(token="new")]
    router = await make_router(pods, token_file=token_file)
    status, body = await start(http, router, "s1", Authorization="Bearer new")
    assert (status, body["reason"], body["message"]) == (401, "unauthorized", "invalid bearer token")
    token_file.write_text("new\n")  # a changed file is re-read on the next request
    assert (await start(http, router, "s1", Authorization="Bearer new"))[0] == 200
    start_call = pods[0].calls("/stream/start")[-1]
    assert start_call.headers.get("Authorization") == "Bearer new"  # forwarded to the pod
    status, body = await start(http, router, "s2")
    assert (status, body["message"]) == (401, "missing bearer token: send Authorization: Bearer <token>")


async def test_pods_learned_once_dns_recovers_from_a_failure_at_start(http, make_pod, make_router):
    """A resolver failing when the router starts (and again later) leaves it with no pods only until DNS answers:
    its own refresh loop finds the pods, with no restart and nothing calling it from outside."""
    pod = await make_pod(host="127.0.0.1")
    failing = asyncio.Event()
    failing.set()

    async def resolver(host: str, port: int, type: int) -> list[tuple]:
        if failing.is_set():
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return [(socket.AF_INET, type, 6, "", ("127.0.0.1", port))]

    port = int(pod.url.rsplit(":", 1)[1])
    router = await make_router(DnsPods(f"workers.default.svc:{port}", resolver=resolver), refresh_interval=0.05)
    status, body = await start(http, router, "s0")
    assert (status, body["reason"]) == (503, "no_pods")
    failing.clear()
    for _ in range(400):  # 20 s at most; the refresh runs every 0.05 s
        if router.router.pods:
            break
        await asyncio.sleep(0.05)
    assert list(router.router.pods) == [pod.url]
    assert (await start(http, router, "s1"))[0] == 200 and "s1" in pod.streams


async def test_callers_live_runner_headers_never_reach_a_pod(http, make_pod, make_router):
    # The router fronts BYOC pods: a caller's Livepeer-Session-Control would send the pod down the Live Runner
    # path to call back a URL the caller chose (security review L5).
    pods = [await make_pod()]
    router = await make_router(pods)
    lr = {"Livepeer-Session-Id": "x", "Livepeer-Session-Token": "t", "Livepeer-Session-Control": "http://evil:1/c"}
    assert (await start(http, router, "s1", **lr))[0] == 200
    params = {"width": 64, "height": 64}
    async with http.post(router.url + "/stream/params", json=params, headers={"X-Stream-Id": "s1", **lr}) as r:
        assert r.status == 200
    forwarded = pods[0].calls("/stream/start") + pods[0].calls("/stream/params")
    assert len(forwarded) == 2
    assert all(not k.lower().startswith("livepeer-") for c in forwarded for k in c.headers), forwarded


async def test_deeply_nested_json_is_no_router_error(http, make_pod, make_router):
    # json recurses per level; the router only peeks at start bodies for the stream id (review L2).
    pods = [await make_pod()]
    router = await make_router(pods)
    headers = {"X-Stream-Id": "s1", "Content-Type": "application/json"}
    async with http.post(router.url + "/stream/start", data="[" * 100_000, headers=headers) as r:
        assert r.status == 400, await r.text()  # the pod's answer, passed on
