"""The REST contract over real HTTP (sessions here have no trickle URLs, so they idle until stopped)."""

from __future__ import annotations

import asyncio
import gc
import json
import re
import threading

import pytest
from byoc_edge.bearer import BearerToken, Refusal
from byoc_runtime.main import freeze_startup_objects
from byoc_runtime.processors.builtin import PassthroughProcessor

from .support import Stream, running_worker, unique

JSON = {"Content-Type": "application/json"}


def start_body(request_id: str | None = None, **extra) -> dict:
    return {"gateway_request_id": request_id or unique("req"), **extra}


async def test_health_goes_loading_idle_ok_idle() -> None:
    release = threading.Event()  # set from the test's loop, awaited on the processor's own loop

    class SlowLoad(PassthroughProcessor):
        async def load_model(self, **kwargs) -> None:
            await asyncio.to_thread(release.wait, 30)

    async with running_worker(SlowLoad, start_wait=0) as rt:
        assert (await rt.get("/health"))[1]["status"] == "LOADING"
        status, body = await rt.post("/stream/start", json=start_body())
        assert status == 503 and body["reason"] == "loading" and body["current_state"] == "LOADING"
        release.set()
        await rt.wait_health("IDLE")
        status, body = await rt.post("/stream/start", json=start_body("a"))
        assert status == 200 and body["status"] == "success"
        assert (await rt.get("/health"))[1]["status"] == "OK"
        assert (await rt.post("/stream/stop", headers={"X-Stream-Id": "a"}))[0] == 200
        await rt.wait_health("IDLE", 5)


async def test_health_error_when_model_fails_to_load() -> None:
    class Broken(PassthroughProcessor):
        async def load_model(self, **kwargs) -> None:
            raise RuntimeError("no weights")

    async with running_worker(Broken) as rt:
        await rt.wait_health("ERROR")
        status, body = await rt.post("/stream/start", json=start_body())
        assert status == 503 and "failed to load" in body["message"] and "no weights" not in str(body)
        # /health stays pytrickle's 200; /ready is what probes and static runner health checks ask.
        assert (await rt.get("/health"))[0] == 200
        status, body = await rt.get("/ready")
        assert (status, body["ready"], body["current_state"]) == (503, False, "ERROR")


async def test_ready_only_when_the_pod_can_take_work() -> None:
    release = threading.Event()

    class SlowLoad(PassthroughProcessor):
        async def load_model(self, **kwargs) -> None:
            await asyncio.to_thread(release.wait, 30)

    async with running_worker(SlowLoad, start_wait=0, capacity=1) as rt:
        assert (await rt.get("/health"))[0] == 200  # pytrickle's answer while LOADING
        status, body = await rt.get("/ready")
        assert (status, body["reason"], body["current_state"]) == (503, "not_ready", "LOADING")
        release.set()
        await rt.wait_health("IDLE")
        assert await rt.get("/ready") == (200, {"ready": True, "status": "IDLE"})
        assert (await rt.post("/stream/start", json=start_body("full")))[0] == 200
        # Full and draining pods stay ready: their streams go on (a failed static health check would cut them).
        assert await rt.get("/api/ready") == (200, {"ready": True, "status": "OK"})
        assert (await rt.post("/drain"))[0] == 200
        assert (await rt.get("/ready"))[0] == 200


@pytest.mark.parametrize("prefix", ["", "/api"])
async def test_routes_at_root_and_under_api(prefix: str) -> None:
    async with running_worker(capability_name="cap-x") as rt:
        await rt.wait_health("IDLE")
        assert (await rt.get(f"{prefix}/health"))[0] == 200
        status, version = await rt.get(f"{prefix}/version")
        assert status == 200 and version["model_id"] == "cap-x" and version["pipeline"] == "byoc"
        status, info = await rt.get(f"{prefix}/hardware/info")
        assert status == 200 and "gpu_info" in info
        status, stats = await rt.get(f"{prefix}/hardware/stats")
        assert status == 200 and "gpu_stats" in stats
        status, _ = await rt.post(f"{prefix}/stream/start", json=start_body("p"))
        assert status == 200
        status, state = await rt.get(f"{prefix}/stream/status")
        assert state["active_streams"] == 1 and state["pipeline_ready"] and state["state"] == "OK"
        assert (await rt.post(f"{prefix}/stream/params", json={"strength": 1}))[0] == 200
        assert (await rt.post(f"{prefix}/stream/stop"))[0] == 200


async def test_live_video_to_video_alias_starts_a_stream() -> None:
    async with running_worker() as rt:
        await rt.wait_health("IDLE")
        status, body = await rt.post("/live-video-to-video", json=start_body("alias"))
        assert status == 200 and body["request_id"] == "alias"


async def test_bad_requests_get_json_reasons() -> None:
    async with running_worker() as rt:
        await rt.wait_health("IDLE")
        status, body = await rt.post("/stream/start", data="gateway_request_id=x")
        assert status == 400 and "Content-Type" in body["message"]
        status, body = await rt.post("/stream/start", data="{not json", headers=JSON)
        assert status == 400 and "JSON" in body["message"]
        status, body = await rt.post("/stream/start", data="[1, 2]", headers=JSON)
        assert status == 400
        # Bad bodies are 400 with the field, as pytrickle answers them (not aiohttp's 422).
        status, body = await rt.post("/stream/start", json={"params": {"width": 512, "height": 512}})
        assert status == 400 and body["errors"][0]["field"] == "gateway_request_id"
        status, body = await rt.post("/stream/start", json=start_body(params={"width": 512}))
        assert status == 400 and "width and height" in body["message"]
        status, body = await rt.post("/stream/start", json=start_body(params={"max_framerate": 100}))
        assert status == 400 and body["errors"][0]["field"] == "params.max_framerate"
        # An empty gateway_request_id is a pytrickle string like any other; the stream id then has to come
        # from X-Stream-Id (ai-runner-style callers send "").
        status, body = await rt.post("/stream/start", json={"gateway_request_id": ""})
        assert status == 400 and "X-Stream-Id" in body["message"]
        status, body = await rt.post("/stream/start", json={"gateway_request_id": ""}, headers={"X-Stream-Id": "e"})
        assert status == 200 and body["stream_id"] == "e" and body["request_id"] == "e"
        status, body = await rt.post("/stream/params", json={"max_framerate": 0}, headers={"X-Stream-Id": "e"})
        assert status == 400 and body["errors"][0]["field"] == "max_framerate"
        status, body = await rt.get("/no/such/route")
        assert status == 404 and body["status"] == "error"


async def test_stream_routes_need_a_stream() -> None:
    async with running_worker() as rt:
        await rt.wait_health("IDLE")
        status, body = await rt.post("/stream/stop")
        assert status == 400 and body["message"] == "No active stream"
        status, _ = await rt.post("/stream/params", json={"x": 1})
        assert status == 400


async def test_capacity_and_idempotent_start() -> None:
    async with running_worker(capacity=2) as rt:
        await rt.wait_health("IDLE")
        assert (await rt.post("/stream/start", json=start_body("one")))[0] == 200
        status, again = await rt.post("/stream/start", json=start_body("one"))
        assert status == 200 and again["message"] == "Stream already running"
        assert (await rt.post("/stream/start", json=start_body("two")))[0] == 200
        status, full = await rt.post("/stream/start", json=start_body("three"))
        assert status == 503 and full["reason"] == "capacity" and full["capacity"] == 2
        assert (await rt.get("/health"))[1]["available"] == 0
        # Idempotency holds at capacity too.
        assert (await rt.post("/stream/start", json=start_body("two")))[0] == 200
        # Several streams: which one is meant must be said.
        status, body = await rt.post("/stream/stop")
        assert status == 400 and "X-Stream-Id" in body["message"]
        status, _ = await rt.post("/stream/stop", headers={"X-Stream-Id": "nope"})
        assert status == 404
        assert (await rt.post("/stream/stop", headers={"X-Stream-Id": "one"}, data="stream ended"))[0] == 200
        assert (await rt.post("/stream/start", json=start_body("three")))[0] == 200
        _, metrics = await rt.get("/metrics")
        assert 'byoc_sessions_rejected_total{reason="capacity"} 1.0' in metrics
        assert "byoc_sessions_active 2.0" in metrics


async def test_concurrent_duplicate_starts_make_one_session() -> None:
    async with running_worker(capacity=3) as rt:
        await rt.wait_health("IDLE")
        results = await asyncio.gather(*(rt.post("/stream/start", json=start_body("dup")) for _ in range(5)))
        assert all(status == 200 for status, _ in results)
        assert len(rt.worker.sessions) == 1


async def test_stream_id_header_names_the_session() -> None:
    async with running_worker(capacity=2) as rt:
        await rt.wait_health("IDLE")
        await rt.post("/stream/start", json=start_body("g1"), headers={"X-Stream-Id": "stream-1"})
        await rt.post("/stream/start", json=start_body("g2"), headers={"X-Stream-Id": "stream-2"})
        status, one = await rt.get("/stream/status", headers={"X-Stream-Id": "stream-1"})
        assert status == 200 and one["gateway_request_id"] == "g1" and one["stream_id"] == "stream-1"
        status, body = await rt.post(
            "/stream/params", json={"width": "256", "height": 128}, headers={"X-Stream-Id": "stream-2"}
        )
        assert status == 200 and body["params"] == {"width": 256, "height": 128}
        _, two = await rt.get("/stream/status?stream_id=g2")
        assert (two["width"], two["height"]) == (256, 128)
        status, body = await rt.post(
            "/stream/params", json={"width": 5, "height": "tall"}, headers={"X-Stream-Id": "stream-2"}
        )
        assert status == 400 and body["errors"][0]["field"] == "height"
        status, body = await rt.post("/stream/stop", json={"gateway_request_id": "g1"})
        assert status == 200 and len(rt.worker.sessions) == 1


async def test_bearer_token() -> None:
    async with running_worker(token="s3cret") as rt:
        await rt.wait_health("IDLE")  # probes stay open
        assert (await rt.get("/metrics"))[0] == 200
        status, body = await rt.post("/stream/start", json=start_body("t"))
        assert status == 401 and body["status"] == "error"
        status, _ = await rt.post("/stream/start", json=start_body("t"), headers={"Authorization": "Bearer nope"})
        assert status == 401
        status, _ = await rt.post("/stream/start", json=start_body("t"), headers={"Authorization": "Bearer s3cret"})
        assert status == 200
        assert (await rt.get("/api/stream/status"))[0] == 401


async def test_params_reach_the_processor_and_processor_errors_are_500() -> None:
    seen: list[dict] = []

    class Recorder(PassthroughProcessor):
        async def update_params(self, params: dict) -> None:
            if params.get("explode"):
                raise ValueError("boom")
            seen.append(params)

    async with running_worker(Recorder) as rt:
        await rt.wait_health("IDLE")
        await rt.post("/stream/start", json=start_body("pp"))
        assert (await rt.post("/stream/params", json={"prompt": "a cat", "max_framerate": "12"}))[0] == 200
        assert seen == [{"prompt": "a cat", "max_framerate": 12}]
        status, body = await rt.post("/stream/params", json={"explode": True})
        # The exception's text stays in the worker's log (L3): go-livepeer passes the body on to the gateway.
        assert (status, body["reason"]) == (500, "params_failed") and "boom" not in str(body), body


async def test_metrics_exposition() -> None:
    async with running_worker() as rt:
        status, text = await rt.get("/metrics")
        assert status == 200
        for name in ("byoc_sessions_active", "byoc_frames_in_total", "byoc_stage_seconds", "byoc_errors_total"):
            assert name in text or name.replace("_total", "") in text


async def test_garbage_collector_pauses_are_timed_by_generation() -> None:
    async with running_worker() as rt:
        before = gc_pauses(await rt.get("/metrics"))
        gc.collect()
        gc.collect(0)
        after = gc_pauses(await rt.get("/metrics"))
        assert after["2"] >= before.get("2", 0) + 1 and after["0"] >= before.get("0", 0) + 1, (before, after)


def gc_pauses(response: tuple[int, str]) -> dict[str, float]:
    status, text = response
    assert status == 200
    found = re.findall(r'byoc_gc_pause_seconds_count\{generation="(\d)"\} (\S+)', text)
    return {generation: float(count) for generation, count in found}


def test_startup_objects_are_frozen_out_of_full_collections() -> None:
    """What is alive at startup (torch, PyAV, the app) is never walked again: a full collection then costs what
    streams allocate, not the ~200k objects of the imports."""
    gc.unfreeze()
    try:
        frozen_before = gc.get_freeze_count()
        freeze_startup_objects()
        assert gc.get_freeze_count() > max(frozen_before, 10_000)
        assert len(gc.get_objects()) < 10_000
    finally:
        gc.unfreeze()


async def test_token_file_is_reread_when_it_changes(tmp_path) -> None:
    """A mounted Secret: the kubelet swaps the ..data link; the new token works without a restart."""
    data = tmp_path / "..data-1"
    data.mkdir()
    (data / "token").write_text("first\n")
    (tmp_path / "..data").symlink_to(data.name)
    token_file = tmp_path / "token"
    token_file.symlink_to("..data/token")
    async with running_worker(token_file=token_file) as rt:
        await rt.wait_health("IDLE")
        assert (await rt.get("/health"))[0] == 200  # not a stream route
        status, body = await rt.post("/stream/start", json=start_body("f"))
        assert status == 401 and body["reason"] == "unauthorized" and "missing bearer token" in body["message"]
        first = {"Authorization": "Bearer first"}
        assert (await rt.get("/stream/status", headers=first))[0] == 200
        # rotation, as the kubelet does it
        rotated = tmp_path / "..data-2"
        rotated.mkdir()
        (rotated / "token").write_text("second")
        (tmp_path / "..data-tmp").symlink_to(rotated.name)
        (tmp_path / "..data-tmp").replace(tmp_path / "..data")
        assert (await rt.get("/stream/status", headers={"Authorization": "Bearer second"}))[0] == 200
        # The orchestrator may still hold the first one until its next registration: no 401 window.
        assert (await rt.get("/stream/status", headers=first))[0] == 200
        status, body = await rt.get("/stream/status", headers={"Authorization": "Bearer guess"})
        assert status == 401 and body["message"] == "invalid bearer token"
        # gone: refused (fail closed), with the reason, as 503: a 401 would make the orchestrator drop the capability
        (tmp_path / "..data").unlink()
        status, body = await rt.get("/stream/status", headers={"Authorization": "Bearer second"})
        assert status == 503 and body["reason"] == "token_unavailable" and "token file is unreadable" in body["message"]


def test_the_previous_token_is_accepted_for_a_grace_after_a_rotation_only(tmp_path) -> None:
    path = tmp_path / "token"
    path.write_text("one")
    now = [100.0]
    token = BearerToken(path=path, previous_grace_s=60, clock=lambda: now[0])
    assert token.refusal("Bearer one") is None
    path.write_text("two-longer")  # a new inode/size: re-read
    assert token.refusal("Bearer two-longer") is None and token.refusal("Bearer one") is None
    now[0] = 159.0
    assert token.refusal("Bearer one") is None
    now[0] = 161.0
    assert token.refusal("Bearer one") == Refusal(401, "invalid bearer token")
    assert token.refusal("") == Refusal(401, "missing bearer token: send Authorization: Bearer <token>")
    assert BearerToken().refusal("") is None  # no token configured: open


async def test_status_carries_no_channel_urls(trickle_server) -> None:
    # Channel URLs are credentials (anyone holding one reads or writes the stream); status is read by routers and
    # anyone reaching the port (security review H3).
    async with running_worker() as rt:
        await rt.wait_health("IDLE")
        stream = Stream.create(trickle_server)
        assert (await rt.post("/stream/start", json=stream.start_body()))[0] == 200
        for headers in ({}, {"X-Stream-Id": stream.sid}):
            status, body = await rt.get("/stream/status", headers=headers)
            assert status == 200 and stream.sid in json.dumps(body)
            assert trickle_server.url("") not in json.dumps(body), body


async def test_a_start_naming_a_running_streams_id_gets_that_stream_only_on_its_own_channels(trickle_server) -> None:
    # go-livepeer copies the gateway's body over the ids it made: another caller naming a running stream's id must
    # not get that session back, nor pin itself to it (security review L6).
    async with running_worker(capacity=2) as rt:
        await rt.wait_health("IDLE")
        victim, other = Stream.create(trickle_server), Stream.create(trickle_server)
        assert (await rt.post("/stream/start", json=victim.start_body()))[0] == 200
        taken = other.start_body(gateway_request_id=victim.sid)
        for headers in ({}, {"X-Stream-Id": other.sid}):
            status, body = await rt.post("/stream/start", json=taken, headers=headers)
            assert (status, body["reason"]) == (409, "conflict"), body
        status, body = await rt.post("/stream/start", json=victim.start_body())  # the orchestrator's retry
        assert status == 200 and body["message"] == "Stream already running"
        assert len(rt.worker.sessions) == 1


async def test_deeply_nested_json_is_a_400(trickle_server) -> None:
    # json's parser recurses per level: 1 MiB of "[" was a RecursionError, a 500 and a traceback (review L2).
    async with running_worker() as rt:
        await rt.wait_health("IDLE")
        for path in ("/stream/start", "/stream/params", "/stream/stop"):
            status, body = await rt.post(path, data="[" * 100_000, headers=JSON)
            assert status == 400 and body["status"] == "error", (path, body)
        deep: dict = {}
        for _ in range(40):
            deep = {"x": deep}
        status, body = await rt.post("/stream/start", json=start_body(params={"width": 64, "height": 64, "p": deep}))
        assert status == 400 and "nested" in body["message"]
        assert len(rt.worker.sessions) == 0


async def test_requested_output_size_is_capped() -> None:
    async with running_worker(max_output_pixels=256 * 256) as rt:
        await rt.wait_health("IDLE")
        status, body = await rt.post("/stream/start", json=start_body("big", params={"width": 8192, "height": 8192}))
        assert (status, body["reason"]) == (400, "output_size") and "8192x8192" in body["message"]
        assert (await rt.post("/stream/start", json=start_body("ok", params={"width": 256, "height": 256})))[0] == 200
        status, body = await rt.post(
            "/stream/params", json={"width": 512, "height": 512}, headers={"X-Stream-Id": "ok"}
        )
        assert (status, body["reason"]) == (400, "output_size")
        assert rt.worker.sessions.get("ok").width == 256
