"""BYOC routes of the test orchestrator, against go-livepeer's documented behaviour (protocols.md 3a)."""

from __future__ import annotations

import base64
import json
import ssl
from typing import Any

import aiohttp
import pytest
from byoc_testenv.orchestrator import CapabilityTable, TestOrchestrator

from .conftest import SECRET

pytestmark = pytest.mark.trickle


def capability(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "cartoon",
        "description": "test",
        "url": url,
        "capacity": 2,
        "price_per_unit": 3,
        "price_scaling": 0,
        "currency": "wei",
        "token": "tok",
        **extra,
    }


async def register(http: aiohttp.ClientSession, orch: TestOrchestrator, body: Any, auth: str = SECRET) -> tuple:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    async with http.post(orch.url + "/capability/register", data=data, headers={"Authorization": auth}) as r:
        return r.status, await r.text()


async def table(http: aiohttp.ClientSession, orch: TestOrchestrator) -> dict[str, Any]:
    async with http.get(orch.url + "/_test/capabilities") as r:
        return await r.json()


def sender(sig: str = "0x" + "ab" * 65) -> str:
    return base64.b64encode(json.dumps({"addr": "0xabc", "sig": sig}).encode()).decode()


async def job_token(http: aiohttp.ClientSession, orch: TestOrchestrator, name: str) -> dict[str, Any]:
    headers = {"Livepeer-Eth-Address": sender(), "Livepeer-Capability": name}
    async with http.get(orch.url + "/process/token", headers=headers) as r:
        assert r.status == 200
        return await r.json()


async def start_stream(http: aiohttp.ClientSession, orch: TestOrchestrator, **job: Any) -> aiohttp.ClientResponse:
    async with http.post(orch.url + "/_test/byoc/stream/start", json={"capability": "cartoon", **job}) as r:
        assert await r.read() == b"" or r.status != 200
        return r


async def test_register_then_table(http, orch):
    assert await register(http, orch, capability("http://w:1")) == (200, "ok")
    entry = (await table(http, orch))["capabilities"]["cartoon"]
    assert entry["url"] == "http://w:1" and entry["capacity"] == 2 and entry["token"] == "tok"
    assert entry["price_per_unit"] == 3 and entry["price_scaling"] == 1  # 0 means 1
    assert entry["registered_at"] > 0 and entry["load"] == 0
    assert [h["action"] for h in entry["history"]] == ["register"]


@pytest.mark.parametrize("auth", ["wrong", f"Bearer {SECRET}", ""])
async def test_register_needs_raw_secret(http, orch, auth):
    assert await register(http, orch, capability("http://w:1"), auth=auth) == (400, "invalid authorization\n")
    assert (await table(http, orch))["capabilities"] == {}


@pytest.mark.parametrize("body", ["{not json", "[1]", json.dumps(capability("u", capacity="2"))])
async def test_register_rejects_bad_json(http, orch, body):
    status, text = await register(http, orch, body)
    assert status == 400 and text.startswith("Error registering capability")


async def test_register_with_unpriced_currency_drops_connection(http, orch):
    # Upstream panics in the handler (no price feed); net/http drops the connection.
    with pytest.raises(aiohttp.ClientError):
        await register(http, orch, capability("http://w:1", currency="USD"))
    assert (await table(http, orch))["capabilities"] == {}


async def test_reregister_replaces_and_resets_load(http, orch, make_pod):
    pod = await make_pod(capacity=2, token="tok")
    await register(http, orch, capability(pod.url))
    assert (await start_stream(http, orch, stream_id="s1")).status == 200
    assert (await job_token(http, orch, "cartoon"))["available_capacity"] == 1
    await register(http, orch, capability("http://elsewhere:1", capacity=5))
    entry = (await table(http, orch))["capabilities"]["cartoon"]
    assert entry["url"] == "http://elsewhere:1" and entry["load"] == 0 and entry["available"] == 5
    assert [h["replaced"] for h in entry["history"] if h["action"] == "register"] == [False, True]


async def test_unregister_raw_name_always_ok(http, orch):
    await register(http, orch, capability("http://w:1"))
    url = orch.url + "/capability/unregister"
    async with http.post(url, data="cartoon", headers={"Authorization": "nope"}) as r:
        assert (r.status, await r.text()) == (400, "invalid authorization\n")
    for name in ("cartoon", "never-registered"):
        async with http.post(url, data=name, headers={"Authorization": SECRET}) as r:
            assert (r.status, await r.text()) == (200, "ok")
    data = await table(http, orch)
    assert data["capabilities"] == {}
    assert [(h["action"], h["name"], h.get("found")) for h in data["history"]] == [
        ("register", "cartoon", None),
        ("unregister", "cartoon", True),
        ("unregister", "never-registered", False),
    ]


async def test_job_token_reports_capacity_and_offchain_price(http, orch, make_pod):
    async with http.get(orch.url + "/process/token") as r:
        assert r.status == 400  # no Livepeer-Eth-Address
    await register(http, orch, capability((await make_pod(capacity=2)).url, token=""))
    token = await job_token(http, orch, "cartoon")
    assert token == {
        "sender_address": {"addr": "0xabc", "sig": "0x" + "ab" * 65},
        "price": {"pixelsPerUnit": 1},  # JobPriceInfo off-chain: 0/1 whatever was registered (3/1 here)
        "service_addr": orch.url,
        "available_capacity": 2,
        "LastNonce": 0,
    }
    assert "available_capacity" not in await job_token(http, orch, "unknown")  # omitempty
    for sid in ("a", "b"):
        assert (await start_stream(http, orch, stream_id=sid)).status == 200
    assert "available_capacity" not in await job_token(http, orch, "cartoon")  # 0 left: omitted too


@pytest.mark.parametrize(
    ("sig", "status"),
    [("0x", 400), ("", 200), ("zz", 400), ("abc", 400), ("0x" + "ab" * 65, 200), ("ab" * 65, 200), ("0x01", 400)],
)
async def test_job_token_signature_is_hex_after_the_130_rule(http, orch, sig, status):
    # "0x" is cut only from signatures longer than 130 characters; off-chain any hex verifies.
    headers = {"Livepeer-Eth-Address": sender(sig), "Livepeer-Capability": "cartoon"}
    async with http.get(orch.url + "/process/token", headers=headers) as r:
        assert r.status == status
        if status == 400:
            assert await r.text() == "Invalid eth address header \n"


def test_load_semantics_follow_upstream():
    t = CapabilityTable()
    assert t.reserve("cartoon") is None and t.available("cartoon") == 0  # unknown: nothing to reserve
    t.register(json.dumps(capability("u", capacity=2)))
    t.reserve("cartoon")
    assert (t.capabilities["cartoon"].load, t.available("cartoon")) == (1, 1)  # available = capacity - load
    t.free("cartoon")
    t.free("cartoon")
    assert (t.capabilities["cartoon"].load, t.available("cartoon")) == (-1, 3)  # no floor at 0
    t.unregister("cartoon")
    t.free("cartoon")  # freeing an unknown name does nothing
    assert "cartoon" not in t.capabilities


def test_load_is_not_capped_and_free_after_reregister_goes_negative():
    t = CapabilityTable()
    t.register(json.dumps(capability("u", capacity=1)))
    assert t.reserve("cartoon") and t.reserve("cartoon")  # no enforcement
    assert t.available("cartoon") == 0
    t.register(json.dumps(capability("u", capacity=1)))
    t.free("cartoon")
    assert t.capabilities["cartoon"].load == -1  # as upstream: the remainder then exceeds capacity
    assert t.available("cartoon") == 2


async def test_stream_start_calls_worker_as_go_livepeer(http, orch, make_pod, trickle_server):
    pod = await make_pod(capacity=2, token="tok")
    await register(http, orch, capability(pod.url))
    resp = await start_stream(http, orch, stream_id="sid1", params={"width": 256, "height": 256})
    assert resp.status == 200
    (call,) = pod.calls("/stream/start")
    assert call.headers["X-Stream-Id"] == "sid1"
    assert call.headers["Authorization"] == "Bearer tok"
    assert call.headers["Content-Type"] == "application/json"
    body = call.json()
    base = trickle_server.base_url
    assert body == {
        "gateway_request_id": "sid1",
        "control_url": base + "sid1-control",
        "events_url": base + "sid1-events",
        "subscribe_url": base + "sid1",
        "publish_url": base + "sid1-out",
        "params": {"width": 256, "height": 256},
    }
    assert resp.headers["X-Publish-Url"] == base + "sid1" and resp.headers["X-Subscribe-Url"] == base + "sid1-out"
    assert resp.headers["Livepeer-Balance"] == "0" and "X-Data-Url" not in resp.headers
    assert resp.content_length == 0  # the URLs are in the headers only
    assert (await table(http, orch))["capabilities"]["cartoon"]["load"] == 1
    # The channels exist on the trickle server until the stream stops.
    async with http.post(base + "sid1-events/0", data=b"{}") as r:
        assert r.status == 200

    url = orch.url + "/_test/byoc/stream/stop"
    async with http.post(url, json={"stream_id": "sid1"}) as r:
        assert r.status == 200
    (stop,) = pod.calls("/stream/stop")
    assert stop.headers["X-Stream-Id"] == "sid1" and stop.headers["Authorization"] == "Bearer tok"
    assert (await table(http, orch))["capabilities"]["cartoon"]["load"] == 0
    async with http.post(base + "sid1-events/1", data=b"{}") as r:
        assert r.status == 404  # closed with the stream


async def test_stream_data_channel_and_params(http, orch, make_pod, trickle_server):
    pod = await make_pod()
    await register(http, orch, capability(pod.url, token=""))
    resp = await start_stream(http, orch, stream_id="sid2", enable_data_output=True, enable_video_ingress=False)
    assert resp.status == 200 and resp.headers["X-Data-Url"] == trickle_server.base_url + "sid2-data"
    body = pod.calls("/stream/start")[0]
    assert "Authorization" not in body.headers  # no token registered
    assert "subscribe_url" not in body.json() and body.json()["data_url"].endswith("sid2-data")
    async with http.post(orch.url + "/_test/byoc/stream/params", json={"stream_id": "sid2", "params": {"a": 1}}) as r:
        assert r.status == 200
    assert pod.calls("/stream/params")[0].json() == {"a": 1}


async def test_stream_start_passes_worker_refusal_and_frees(http, orch, make_pod, trickle_server):
    pod = await make_pod(capacity=1)
    await register(http, orch, capability(pod.url, token=""))
    assert (await start_stream(http, orch, stream_id="a")).status == 200
    async with http.post(orch.url + "/_test/byoc/stream/start", json={"capability": "cartoon", "stream_id": "b"}) as r:
        assert r.status == 503 and json.loads(await r.text())["message"] == "Pipeline is still in use"
        # The headers were set before the worker call, so the refusal carries them (and the balance) too.
        assert r.headers["X-Control-Url"] == trickle_server.base_url + "b-control"
        assert r.headers["Livepeer-Balance"] == "0"
    assert (await table(http, orch))["capabilities"]["cartoon"]["load"] == 1  # only "a"
    async with http.post(trickle_server.base_url + "b-control/0", data=b"{}") as r:
        assert r.status == 404  # its channels were closed


async def test_worker_401_drops_capability(http, orch, make_pod):
    pod = await make_pod(token="right")
    await register(http, orch, capability(pod.url, token="wrong"))
    async with http.post(orch.url + "/_test/byoc/stream/start", json={"capability": "cartoon"}) as r:
        assert (r.status, await r.text()) == (500, "Orchestrator worker failure")
    data = await table(http, orch)
    assert data["capabilities"] == {} and data["history"][-1]["action"] == "dropped"


async def test_unreachable_worker_is_500_and_kept(http, orch):
    await register(http, orch, capability("http://127.0.0.1:9"))
    resp = await start_stream(http, orch)
    assert resp.status == 500
    assert (await table(http, orch))["capabilities"]["cartoon"]["load"] == 0


async def test_tls_self_signed(http, make_orch):
    orch = await make_orch(tls=True)
    assert orch.url.startswith("https://") and orch.certificate is not None
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await register(http, orch, capability("u"))
    async with http.post(
        orch.url + "/capability/register", json=capability("u"), headers={"Authorization": SECRET}, ssl=False
    ) as r:
        assert r.status == 200  # verification opt-out
    ca = ssl.create_default_context(cafile=str(orch.certificate.cert_file))
    async with http.get(orch.url + "/_test/capabilities", ssl=ca) as r:
        assert "cartoon" in (await r.json())["capabilities"]  # CA bundle
