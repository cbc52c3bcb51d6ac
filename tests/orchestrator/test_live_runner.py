"""Live Runner routes of the test orchestrator, against go-livepeer's documented behaviour (protocols.md 3b)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web
from byoc_testenv.orchestrator import TestOrchestrator, go_duration
from byoc_testenv.polling import eventually

from .conftest import SECRET

pytestmark = pytest.mark.trickle


def runner_body(url: str, **extra: Any) -> dict[str, Any]:
    return {"app": "live-video-to-video/cartoon", "runner_url": url, "capacity": 2, "mode": "persistent", **extra}


async def heartbeat(http: aiohttp.ClientSession, orch: TestOrchestrator, body: dict, auth: str) -> tuple[int, Any]:
    async with http.post(orch.url + "/runners/heartbeat", json=body, headers={"Authorization": auth}) as r:
        return r.status, (await r.json() if r.status == 200 else await r.text())


async def discovery(http: aiohttp.ClientSession, orch: TestOrchestrator) -> list[dict[str, Any]]:
    async with http.get(orch.url + "/discovery") as r:
        assert r.status == 200
        (entry,) = await r.json()
        assert entry["address"] == orch.url
        return entry.get("runners", [])  # omitted when none is ready, as upstream


async def reserve(http: aiohttp.ClientSession, orch: TestOrchestrator, route: str) -> tuple[int, Any]:
    async with http.post(f"{orch.url}/apps/{route}/session") as r:
        return r.status, (await r.json() if r.status == 200 else await r.text())


def test_go_durations():
    assert [go_duration(s) for s in (5, 20, 0.5, 1.5, 90, 0.0001, 3600)] == [
        "5s", "20s", "500ms", "1.5s", "1m30s", "100µs", "1h0m0s",
    ]  # fmt: skip


async def test_first_heartbeat_registers(http, orch):
    status, reply = await heartbeat(http, orch, runner_body("http://127.0.0.1:1"), SECRET)
    assert status == 200
    assert reply["runner_id"].startswith("runner_") and reply["orchestrator"] == orch.url
    assert (reply["heartbeat_interval"], reply["heartbeat_ttl"]) == ("100ms", "500ms")
    assert reply["heartbeat_secret"] and reply["session_ids"] == []
    assert reply["o2r"]["name"] == "o2r" and reply["o2r"]["url"].endswith("-o2r")
    (listed,) = await discovery(http, orch)
    assert listed["url"] == f"{orch.url}/apps/{reply['runner_id']}/session"
    assert (listed["capacity"], listed["capacity_used"], listed["capacity_available"]) == (2, 0, 2)
    assert "runner_url" not in json.dumps(listed)  # discovery never leaks the runner's address


async def test_heartbeat_secrets(http, orch):
    body = runner_body("http://127.0.0.1:1", runner_id="r1")
    assert (await heartbeat(http, orch, body, "wrong"))[0] == 401
    _, first = await heartbeat(http, orch, body, SECRET)
    status, again = await heartbeat(http, orch, body, SECRET)  # the orch secret no longer works for r1
    assert status == 401
    status, again = await heartbeat(http, orch, {**body, "capacity": 3}, first["heartbeat_secret"])
    assert status == 200 and "heartbeat_secret" not in again and "o2r" not in again
    assert (await discovery(http, orch))[0]["capacity"] == 3


@pytest.mark.parametrize(
    "bad",
    [{"runner_url": "not-a-url"}, {"app": " x "}, {"status": "Ready"}, {"mode": "batch"}, {"capacity": -1}],
)
async def test_heartbeat_validation(http, orch, bad):
    status, text = await heartbeat(http, orch, {**runner_body("http://127.0.0.1:1"), **bad}, SECRET)
    assert status == 400, text


async def test_ttl_expiry_and_secret_rotation(http, make_orch):
    orch = await make_orch(heartbeat_interval=0.1, heartbeat_ttl=0.3)
    body = runner_body("http://127.0.0.1:1", runner_id="r1")
    _, first = await heartbeat(http, orch, body, SECRET)
    await asyncio.sleep(0.45)  # silent past the TTL
    assert await discovery(http, orch) == []
    status, _ = await heartbeat(http, orch, body, first["heartbeat_secret"])
    assert status in (401, 404)  # 404 until swept, then unknown: either way "register again"
    await eventually(lambda: _no_runner(orch, "r1"), 3, "runner r1 swept", interval=0.05)
    status, second = await heartbeat(http, orch, body, SECRET)
    assert status == 200 and second["heartbeat_secret"] != first["heartbeat_secret"]
    assert (await heartbeat(http, orch, body, first["heartbeat_secret"]))[0] == 401
    assert (await heartbeat(http, orch, body, second["heartbeat_secret"]))[0] == 200
    assert any(r["reason"] == "heartbeat timeout" for r in orch.live_runners.removed)


async def _no_runner(orch: TestOrchestrator, runner_id: str) -> bool:
    return runner_id not in orch.live_runners.runners


async def test_unregister(http, orch):
    _, reg = await heartbeat(http, orch, runner_body("http://127.0.0.1:1", runner_id="r1"), SECRET)
    url = orch.url + "/runners/r1/unregister"
    async with http.post(url, headers={"Authorization": SECRET}) as r:
        assert r.status == 401  # needs the heartbeat secret
    async with http.post(url, headers={"Authorization": reg["heartbeat_secret"]}) as r:
        assert r.status == 204
    async with http.post(url, headers={"Authorization": reg["heartbeat_secret"]}) as r:
        assert r.status == 404
    assert await discovery(http, orch) == []


async def test_sessions_capacity_and_discovery(http, orch):
    _, reg = await heartbeat(http, orch, runner_body("http://127.0.0.1:1", runner_id="r1"), SECRET)
    s1 = await reserve(http, orch, "r1")
    s2 = await reserve(http, orch, "r1")
    assert s1[0] == s2[0] == 200
    assert s1[1]["control_url"] == f"{orch.url}/apps/r1/session/{s1[1]['session_id']}"
    assert s1[1]["app_url"] == s1[1]["control_url"] + "/app"
    status, text = await reserve(http, orch, "r1")
    assert (status, text) == (503, "no capacity available for runner\n")
    (listed,) = await discovery(http, orch)
    assert (listed["capacity_used"], listed["capacity_available"]) == (2, 0)
    _, hb = await heartbeat(http, orch, runner_body("http://127.0.0.1:1", runner_id="r1"), reg["heartbeat_secret"])
    assert hb["session_ids"] == [s1[1]["session_id"], s2[1]["session_id"]]  # in creation order
    async with http.post(s1[1]["control_url"] + "/stop") as r:
        assert r.status == 204
    assert (await discovery(http, orch))[0]["capacity_available"] == 1
    assert (await reserve(http, orch, "nobody"))[0] == 404


async def test_not_ready_runner_is_hidden(http, orch):
    body = runner_body("http://127.0.0.1:1", runner_id="r1")
    _, reg = await heartbeat(http, orch, body, SECRET)
    await heartbeat(http, orch, {**body, "status": "draining"}, reg["heartbeat_secret"])
    assert await discovery(http, orch) == []
    assert (await reserve(http, orch, "r1"))[0] == 404


async def test_proxy_injects_session_headers(http, orch, make_pod):
    pod = await make_pod()
    await heartbeat(http, orch, runner_body(pod.url + "/echo", runner_id="r1"), SECRET)
    _, session = await reserve(http, orch, "r1")
    async with http.put(session["app_url"] + "/a/b?x=1", data=b"hello", headers={"X-Custom": "1"}) as r:
        assert r.status == 200
        seen = await r.json()
    assert (seen["method"], seen["path"], seen["query"], seen["body"]) == ("PUT", "/echo/a/b", "x=1", "hello")
    headers = seen["headers"]
    sid = session["session_id"]
    assert headers["Livepeer-Session-Id"] == sid and headers["Livepeer-Runner-Route"] == "r1"
    assert headers["Livepeer-Session-Control"] == f"{orch.url}/runner/r1/session/{sid}"
    assert headers["Livepeer-Session-Token"] and headers["X-Custom"] == "1"
    async with http.get(f"{orch.url}/apps/r1/session/nope/app/") as r:
        assert r.status == 404


async def _session_with_control(http, orch, pod) -> tuple[str, dict[str, str]]:
    await heartbeat(http, orch, runner_body(pod.url + "/echo", runner_id="r1", capacity=1), SECRET)
    _, session = await reserve(http, orch, "r1")
    async with http.get(session["app_url"] + "/") as r:
        headers = (await r.json())["headers"]
    return headers["Livepeer-Session-Control"], {"Livepeer-Session-Token": headers["Livepeer-Session-Token"]}


async def test_channel_callback(http, orch, make_pod, trickle_server):
    control, token = await _session_with_control(http, orch, await make_pod())
    wanted = {"channels": [{"name": "in", "mime_type": "video/mp2t"}, {"name": "events"}]}
    async with http.post(control + "/channels", json=wanted, headers={"Livepeer-Session-Token": "bad"}) as r:
        assert r.status == 401
    async with http.post(control + "/channels", json=wanted, headers=token) as r:
        assert r.status == 200
        channels = (await r.json())["channels"]
    sid = control.rsplit("/", 1)[1]
    assert [(c["name"], c["channel_name"], c["mime_type"]) for c in channels] == [
        ("in", f"{sid}-in", "video/mp2t"),
        ("events", f"{sid}-events", "application/octet-stream"),
    ]
    assert channels[0]["url"] == channels[0]["internal_url"] == trickle_server.base_url + f"{sid}-in"
    async with http.post(channels[1]["internal_url"] + "/0", data=b"{}") as r:
        assert r.status == 200  # the channel exists on the trickle server
    async with http.post(control + "/channels", json={"channels": [{"name": "in"}]}, headers=token) as r:
        assert (await r.json())["channels"][0]["mime_type"] == "video/mp2t"  # idempotent
    for bad in ({"channels": []}, {"channels": [{"name": "a b"}]}, {"channels": [{"name": "x"}] * 26}):
        async with http.post(control + "/channels", json=bad, headers=token) as r:
            assert r.status == 400
    async with http.post(control.replace(sid, "session_nope") + "/channels", json=wanted, headers=token) as r:
        assert r.status == 404
    async with http.post(control + "/stop", headers=token) as r:
        assert r.status == 204  # the runner releases its session ...
    assert (await discovery(http, orch))[0]["capacity_used"] == 0
    async with http.post(channels[1]["internal_url"] + "/1", data=b"{}") as r:
        assert r.status == 404  # ... and its channels with it


async def test_o2r_carries_session_events(http, orch):
    _, reg = await heartbeat(http, orch, runner_body("http://127.0.0.1:1", runner_id="r1"), SECRET)
    _, session = await reserve(http, orch, "r1")
    events = []
    for seq in range(6):
        async with http.get(f"{reg['o2r']['url']}/{seq}") as r:
            assert r.status == 200
            events.append(json.loads(await r.read()))
        if {"event": "reserved", "session": session["session_id"]}.items() <= events[-1].items():
            break
    else:
        pytest.fail(f"no reserved event on o2r: {events}")


async def test_static_runners(http, orch, make_pod):
    pod = await make_pod()
    doc = {"runners": [{**runner_body(pod.url), "label": "gpu-a", "routing": "label", "health_url": "/health"}]}
    async with http.post(orch.cli_url + "/registerLiveRunners", json=doc) as r:
        assert r.status == 200
        (reg,) = (await r.json())["runners"]
    assert reg["healthy"] and reg["health_url"] == pod.url + "/health" and reg["runner_id"].startswith("runner_")
    (listed,) = await discovery(http, orch)
    assert listed["url"] == f"{orch.url}/apps/gpu-a/session"
    assert (await reserve(http, orch, "gpu-a"))[0] == 200

    # An invalid batch changes nothing; an upsert keeps the id; entries never go away.
    bad = {"runners": [doc["runners"][0], {**doc["runners"][0]}]}
    async with http.post(orch.cli_url + "/registerLiveRunners", json=bad) as r:
        assert r.status == 400 and "duplicate label" in await r.text()
    async with http.post(orch.cli_url + "/registerLiveRunners", json={"runners": []}) as r:
        assert r.status == 200
    async with http.post(orch.cli_url + "/registerLiveRunners", json=doc) as r:
        assert (await r.json())["runners"][0]["runner_id"] == reg["runner_id"]
    assert (await discovery(http, orch))[0]["capacity_used"] == 1  # sessions kept across the upsert

    # One failed health check: unavailable, sessions released; healthy again: back.
    pod.health_status_code = 503

    async def hidden() -> bool:
        return await discovery(http, orch) == []

    await eventually(hidden, 3, "the runner hidden", interval=0.05)
    pod.health_status_code = 200

    async def back() -> bool:
        runners = await discovery(http, orch)
        return bool(runners) and runners[0]["capacity_used"] == 0

    await eventually(back, 3, "the runner back", interval=0.05)
    async with http.post(
        orch.url + "/runners/heartbeat", json={**runner_body(pod.url), "runner_id": reg["runner_id"]}
    ) as r:
        assert r.status in (400, 401)  # static runners cannot heartbeat


async def test_static_runner_health_timeout(http, make_orch, make_pod):
    orch = await make_orch(health_timeout=0.2)
    pod = await make_pod()
    doc = {"runners": [{**runner_body(pod.url), "label": "slow", "health_url": pod.url + "/health"}]}
    async with http.post(orch.cli_url + "/registerLiveRunners", json=doc) as r:
        assert (await r.json())["runners"][0]["healthy"]
    pod.health_delay = 0.4  # answers 200, but later than the timeout

    async def hidden() -> bool:
        return await discovery(http, orch) == []

    await eventually(hidden, 3, "the runner hidden", interval=0.05)
    pod.health_delay = 0
    await pod.close()  # unreachable is a failure too
    await orch.live_runner_routes.check_static_health()
    assert await discovery(http, orch) == []


async def test_static_upserts_only_on_the_cli_port(http, orch, make_pod):
    pod = await make_pod()
    doc = {"runners": [{**runner_body(pod.url), "label": "cli-only", "health_url": "/health"}]}
    async with http.post(orch.url + "/registerLiveRunners", json=doc) as r:
        assert r.status == 404  # upstream serves it on -cliAddr only
    async with http.post(orch.cli_url + "/registerLiveRunners", json=doc) as r:
        assert r.status == 200  # no Authorization needed there
    assert len(await discovery(http, orch)) == 1


async def test_live_runner_config_file_is_registered_at_start(http, make_orch, make_pod, tmp_path):
    pod = await make_pod()
    config = tmp_path / "runners.json"
    entry = {**runner_body(pod.url), "label": "from-file", "routing": "label", "health_url": "/health", "capacity": 2}
    config.write_text(json.dumps({"runners": [entry]}))
    orch = await make_orch(runners_config=str(config))
    (listed,) = await discovery(http, orch)
    assert listed["url"] == f"{orch.url}/apps/from-file/session" and listed["capacity"] == 2
    # Upserting the same label later updates that runner (by label), it does not add one.
    async with http.post(orch.cli_url + "/registerLiveRunners", json={"runners": [{**entry, "capacity": 3}]}) as r:
        assert r.status == 200
    (listed,) = await discovery(http, orch)
    assert listed["capacity"] == 3


async def test_invalid_live_runner_config_file_fails_the_start(make_orch, tmp_path):
    from byoc_testenv.orchestrator.cli import RunnersConfigError

    config = tmp_path / "runners.json"
    config.write_text(json.dumps({"runners": [{"label": "x", "runner_url": "http://127.0.0.1:1", "app": "a"}]}))
    with pytest.raises(RunnersConfigError, match="health_url is required"):
        await make_orch(runners_config=str(config))
    with pytest.raises(RunnersConfigError, match="error reading"):
        await make_orch(runners_config=str(tmp_path / "missing.json"))


# -- upstream's mux and ReverseProxy on the app routes (server/ai_http.go) ------------------------------------


async def test_bare_app_path_is_redirected_like_go_mux(http, orch, make_pod):
    pod = await make_pod()
    await heartbeat(http, orch, runner_body(pod.url + "/echo", runner_id="r1"), SECRET)
    _, session = await reserve(http, orch, "r1")
    async with http.post(session["app_url"] + "?x=1", data=b"hi", allow_redirects=False) as r:
        assert r.status == 301 and r.headers["Location"] == urlsplit(session["app_url"]).path + "/?x=1"
    async with http.post(session["app_url"], data=b"hi") as r:  # followed as a GET, without the body
        seen = await r.json()
    assert (seen["method"], seen["path"], seen["body"]) == ("GET", "/echo/", "")
    await heartbeat(http, orch, runner_body(pod.url, runner_id="r2", mode="single-shot"), SECRET)
    async with http.get(f"{orch.url}/apps/r2/app", allow_redirects=False) as r:
        assert r.status == 301 and r.headers["Location"] == "/apps/r2/app/"


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]


async def test_app_proxy_streams_the_request_body(http, orch):
    got_first = asyncio.Event()

    async def upload(request: web.Request) -> web.Response:
        first = await request.content.readany()
        got_first.set()
        return web.json_response({"first": first.decode(), "rest": (await request.read()).decode()})

    app = web.Application()
    app.router.add_post("/upload", upload)
    runner, url = await _serve(app)
    try:
        await heartbeat(http, orch, runner_body(url, runner_id="r1"), SECRET)
        _, session = await reserve(http, orch, "r1")

        async def body() -> AsyncIterator[bytes]:
            yield b"one"
            await asyncio.wait_for(got_first.wait(), 10)  # the runner has it before the rest is even sent
            yield b"two"

        async with http.post(session["app_url"] + "/upload", data=body()) as r:
            assert await r.json() == {"first": "one", "rest": "two"}
    finally:
        await runner.cleanup()


@dataclass(frozen=True)
class HealthCheck:
    name: str
    began: float
    ended: float


class HealthLog:
    """A runner health endpoint that answers after ``delay`` and records when each check began and ended."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.checks: list[HealthCheck] = []

    async def health(self, request: web.Request) -> web.Response:
        began = time.monotonic()
        await asyncio.sleep(self.delay)
        self.checks.append(HealthCheck(request.match_info["name"], began, time.monotonic()))
        return web.Response(text="ok")

    def sequential(self) -> bool:
        ordered = sorted(self.checks, key=lambda c: c.began)
        return all(later.began >= earlier.ended for earlier, later in itertools.pairwise(ordered))


async def test_static_health_checks_run_one_after_another(http, make_orch):
    orch = await make_orch(health_interval=3600)  # only the checks this test makes
    log = HealthLog(delay=0.3)
    app = web.Application()
    app.router.add_get("/health/{name}", log.health)
    runner, url = await _serve(app)
    try:
        doc = {"runners": [{**runner_body(url), "label": n, "health_url": f"/health/{n}"} for n in ("a", "b", "c")]}
        began = time.monotonic()
        async with http.post(orch.cli_url + "/registerLiveRunners", json=doc) as r:
            assert r.status == 200 and all(reg["healthy"] for reg in (await r.json())["runners"])
        assert time.monotonic() - began >= 0.9 and len(log.checks) == 3  # checked before the answer
        await orch.live_runner_routes.check_static_health()  # the health loop's round
        assert len(log.checks) == 6 and log.sequential(), log.checks

        # A bad entry refuses the batch, after the entries before it were checked (upstream's order).
        bad = {"runners": [{**doc["runners"][0], "label": "d"}, {**doc["runners"][1], "label": "e", "capacity": -1}]}
        async with http.post(orch.cli_url + "/registerLiveRunners", json=bad) as r:
            assert r.status == 400 and (await r.text()).startswith("runners[1]: capacity must be >= 0")
        assert log.checks[-1].name == "a" and len(log.checks) == 7
        assert {r.fields.get("label") for r in orch.live_runners.runners.values()} == {"a", "b", "c"}
    finally:
        await runner.cleanup()


# -- on-chain price validation (ai/runner/live_runner.go normalizeLiveRunnerPriceInfo) --------------------------


@pytest.mark.parametrize(
    ("price_info", "message"),
    [
        (None, "price_info.price is required"),
        ({"currency": "usd"}, "price_info.price is required"),
        ({"price": 0}, "price_info.price must be a positive decimal"),
        ({"price": "-1.5"}, "price_info.price must be a positive decimal"),
        ({"price": "1.5", "currency": "wei"}, "price_info.currency must be usd"),
        ({"price": 2, "unit": "day"}, "price_info.unit must be hour, 720p, or fixed"),
    ],
)
async def test_onchain_heartbeat_needs_a_usd_price(http, make_orch, price_info, message):
    onchain, offchain = await make_orch(onchain_prices=True), await make_orch()
    body = runner_body("http://127.0.0.1:1", **({"price_info": price_info} if price_info else {}))
    assert await heartbeat(http, onchain, body, SECRET) == (400, message + "\n")
    assert (await heartbeat(http, offchain, body, SECRET))[0] == 200  # off-chain returns before the price check


async def test_onchain_price_is_normalized_and_decoded_as_go(http, make_orch):
    orch = await make_orch(onchain_prices=True)
    price = {"price": "0.5", "currency": " USD ", "unit": "720P"}
    body = runner_body("http://127.0.0.1:1", runner_id="r1", price_info=price)
    assert (await heartbeat(http, orch, body, SECRET))[0] == 200
    assert orch.live_runners.runners["r1"].fields["price_info"] == {"price": "0.5", "currency": "usd", "unit": "720p"}
    for bad in ({"price": "abc"}, {"price": True}, "1.5"):  # json.Number and struct decoding fail in both modes
        status, _ = await heartbeat(http, orch, runner_body("http://127.0.0.1:1", price_info=bad), SECRET)
        assert status == 400, bad


async def test_onchain_static_batch_is_refused_whole(http, make_orch, make_pod):
    orch = await make_orch(onchain_prices=True)
    pod = await make_pod()
    good = {**runner_body(pod.url), "label": "good", "health_url": "/health", "price_info": {"price": "1"}}
    doc = {"runners": [good, {**good, "label": "unpriced", "price_info": None}]}
    async with http.post(orch.cli_url + "/registerLiveRunners", json=doc) as r:
        assert (r.status, await r.text()) == (400, "runners[1]: price_info.price is required\n")
    assert orch.live_runners.runners == {}
    async with http.post(orch.cli_url + "/registerLiveRunners", json={"runners": [good]}) as r:
        assert r.status == 200
