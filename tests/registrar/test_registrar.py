"""The registrar in-process against the test orchestrator (go-livepeer's Live Runner registry over real HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from byoc_runtime.registrar.server import create_app
from byoc_testenv.orchestrator import TestOrchestrator
from byoc_testenv.polling import eventually

from tests.liverunner.support import SECRET, registrar_args, running_registrar
from tests.router.fake_pod import FakeStream


def heartbeats(registrar, outcome: str = "heartbeat") -> float:
    url = registrar.registrations[0].url
    value = registrar.metrics.registry.get_sample_value(
        "byoc_registrar_heartbeats_total", {"orchestrator": url, "outcome": outcome}
    )
    return value or 0.0


@contextlib.asynccontextmanager
async def relay(target: str) -> AsyncIterator[tuple[str, list[str]]]:
    """A pass-through HTTP hop that records the paths it forwarded (stands in for ``-liveRunnerAddr``)."""
    seen: list[str] = []
    http = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.Response:
        seen.append(request.path)
        async with http.request(
            request.method, target + request.path_qs, headers=request.headers, data=await request.read()
        ) as resp:
            return web.Response(status=resp.status, body=await resp.read(), content_type=resp.content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), seen
    finally:
        await server.close()
        await http.close()


async def test_registers_heartbeats_at_the_returned_interval_and_rotates_secret(
    make_orch, stub_worker, secret_file, client_for
) -> None:
    orch = await make_orch(heartbeat_interval=0.25)
    client = client_for(orch)
    async with relay(orch.url) as (runner_facing, seen):
        orch.live_runner_url = runner_facing  # the reply's "orchestrator": where heartbeats go from then on
        async with running_registrar(registrar_args(orch, stub_worker.url, secret_file)) as registrar:
            await eventually(lambda: client.runner(), 10, "client.runner()", interval=0.05)
            listed = await client.runner()
            assert listed["url"] == f"{orch.url}/apps/pod-0/session"
            assert (listed["app"], listed["mode"], listed["capacity"]) == (
                "live-video-to-video/grayscale",
                "persistent",
                3,
            )
            assert listed["gpu"] == {"id": "GPU-1234", "name": "NVIDIA L40S", "vram_mb": 46068}
            assert listed["version"] == "9.9.9"

            before = heartbeats(registrar)
            await asyncio.sleep(2.0)
            count = heartbeats(registrar) - before
            assert 5 <= count <= 10, count  # ~8 at the orchestrator's 250 ms, not the 5 s default

            registration = registrar.registrations[0]
            assert registration.base_url == runner_facing and registration.interval == 0.25
            assert seen.count("/runners/heartbeat") >= count - 1  # heartbeats went through the returned URL
            runner = orch.live_runners.runners["pod-0"]
            # One registration only: every later heartbeat was accepted with the heartbeat secret (the
            # orchestrator secret is refused for a known runner).
            assert [h["action"] for h in runner.history] == ["register"]
            assert heartbeats(registrar, "failed") == 0
            assert runner.fields["status"] == "ready" and runner.fields["runner_url"] == stub_worker.url
        # Leaving: unregistered through the runner-facing URL.
        assert "/runners/pod-0/unregister" in seen
    assert await client.runner() is None
    assert orch.live_runners.removed[-1]["reason"] == "unregister"


async def test_registers_again_when_the_orchestrator_forgets(make_orch, stub_worker, secret_file, client_for) -> None:
    orch = await make_orch()
    client = client_for(orch)
    async with running_registrar(registrar_args(orch, stub_worker.url, secret_file)) as registrar:
        await eventually(lambda: client.runner(), 10, "client.runner()", interval=0.05)
        first_secret = orch.live_runners.runners["pod-0"].heartbeat_secret

        # Forgotten (an orchestrator restart): the heartbeat secret answers 401 -> register from the orch secret.
        del orch.live_runners.runners["pod-0"]
        # The orchestrator lists the runner when it handles the register call; the registrar counts it when the
        # reply is back, a moment later.
        await eventually(
            lambda: "pod-0" in orch.live_runners.runners and heartbeats(registrar, "reregistered"),
            10,
            "'pod-0' in orch.live_runners.runners and heartbeats(registrar, 'reregistered')",
            interval=0.05,
        )
        assert heartbeats(registrar, "reregistered") == 1
        assert orch.live_runners.runners["pod-0"].heartbeat_secret != first_secret
        await eventually(lambda: client.runner(), 10, "client.runner()", interval=0.05)

        # Expired (a partition longer than the TTL): 404 until the orchestrator sweeps it, then registered again.
        orch.live_runners.runners["pod-0"].last_heartbeat -= 60
        await eventually(
            lambda: heartbeats(registrar, "registered") + heartbeats(registrar, "reregistered") >= 3,
            10,
            "heartbeats(registrar, 'registered') + heartbeats(registrar, 'reregistered') >= 3",
            interval=0.05,
        )
        assert orch.live_runners.removed[-1]["reason"] == "heartbeat timeout"
        await eventually(lambda: client.runner(), 10, "client.runner()", interval=0.05)


async def status_at(orch: TestOrchestrator) -> str | None:
    runner = orch.live_runners.runners.get("pod-0")
    return None if runner is None else runner.fields.get("status")


async def test_not_ready_until_the_worker_is_loaded(make_orch, make_pod, secret_file, client_for) -> None:
    orch = await make_orch(heartbeat_interval=5.0, heartbeat_ttl=20.0)  # readiness must not wait for a heartbeat
    client = client_for(orch)
    pod = await make_pod(loading=True, flavour="pytrickle")
    async with running_registrar(registrar_args(orch, pod.url, secret_file, "--unready-after", "2")):
        await eventually(
            lambda: orch.live_runners.runners.get("pod-0") is not None,
            10,
            "orch.live_runners.runners.get('pod-0') is not None",
            interval=0.05,
        )
        assert await status_at(orch) == "loading"
        assert await client.runner() is None  # hidden while loading
        status, _ = await client.reserve(f"{orch.url}/apps/pod-0/session")
        assert status == 404

        pod.loading = False
        await eventually(
            lambda: client.runner(), 2.0, "client.runner()", interval=0.05
        )  # pushed at once, not at the 5 s heartbeat
        assert (await client.runner())["capacity"] == 1  # a pytrickle worker does not say: one stream

        pod.error = True
        await eventually(lambda: status_at_now(orch) == "error", 2.0, "status_at_now(orch) == 'error'", interval=0.05)
        pod.error = False
        await eventually(lambda: client.runner(), 2.0, "client.runner()", interval=0.05)

        await pod.close()  # unreachable: only after --unready-after failed reads in a row
        await eventually(
            lambda: status_at_now(orch) == "unreachable", 3.0, "status_at_now(orch) == 'unreachable'", interval=0.05
        )
        assert await client.runner() is None


def status_at_now(orch: TestOrchestrator) -> str | None:
    runner = orch.live_runners.runners.get("pod-0")
    return None if runner is None else runner.fields.get("status")


async def test_several_orchestrators_tls_and_secrets_stay_out_of_logs(
    make_orch, stub_worker, tmp_path: Path, client_for, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    plain = await make_orch(secret="plain-secret-1")
    tls = await make_orch(secret="tls-secret-22", tls=True)
    wrong = await make_orch(secret="never-given-333")
    files = []
    for name, value in (("plain", "plain-secret-1"), ("tls", "tls-secret-22"), ("wrong", "not-it-4444")):
        files.append(tmp_path / name)
        files[-1].write_text(value)
    args = [
        "--orchestrator", plain.url, "--orchestrator", tls.url, "--orchestrator", wrong.url,
        *[arg for f in files for arg in ("--secret-file", str(f))],
        "--ca-file", str(tls.certificate.cert_file),
        "--app", "live-video-to-video/grayscale", "--worker-url", stub_worker.url, "--runner-id", "pod-0",
        "--probe-interval", "0.1", "--request-timeout", "2",
    ]  # fmt: skip
    async with running_registrar(args, {"POD_IP": "10.1.2.3"}) as registrar:
        await eventually(
            lambda: all(r.registered for r in registrar.registrations[:2]),
            10,
            "all(r.registered for r in registrar.registrations[:2])",
            interval=0.05,
        )
        for orch in (plain, tls):
            runner = orch.live_runners.runners["pod-0"]
            assert runner.fields["runner_url"] == f"http://10.1.2.3:{stub_worker.url.rsplit(':', 1)[1]}"
        await eventually(
            lambda: registrar.registrations[2].last_error != "",
            10,
            "registrar.registrations[2].last_error != ''",
            interval=0.05,
        )
        assert "401" in registrar.registrations[2].last_error and "pod-0" not in wrong.live_runners.runners
        heartbeat_secrets = [o.live_runners.runners["pod-0"].heartbeat_secret for o in (plain, tls)]
        await asyncio.sleep(0.5)  # a few more rounds of heartbeats and refusals
    logged = caplog.text
    assert "registration at" in logged and str(wrong.url) in logged  # the refusal is reported...
    for secret in ("plain-secret-1", "tls-secret-22", "not-it-4444", *heartbeat_secrets):
        assert secret not in logged  # ...without any secret
    assert logged.count("refused (401") == 1  # once, not every retry


async def test_drain_without_worker_support_waits_for_the_stream(make_orch, make_pod, secret_file, client_for) -> None:
    """Any image: no /drain on the worker, so the orchestrator's capacity shrinks to the sessions it holds."""
    orch = await make_orch()
    client = client_for(orch)
    pod = await make_pod(flavour="pytrickle", capacity=2)
    args = registrar_args(orch, pod.url, secret_file, "--capacity", "2", "--drain-seconds", "30")
    async with running_registrar(args) as registrar:
        await eventually(lambda: client.runner(), 10, "client.runner()", interval=0.05)
        url = (await client.runner())["url"]
        assert (await client.reserve(url))[0] == 200
        pod.streams["s1"] = FakeStream("s1", "s1", {})  # the session's stream runs on the pod

        drained = registrar.drain()
        await eventually(
            lambda: registrar.worker.drain_supported is False,
            10,
            "registrar.worker.drain_supported is False",
            interval=0.05,
        )
        await eventually(
            lambda: (runner_now(orch) or {}).get("capacity") == 1,
            10,
            "(runner_now(orch) or {}).get('capacity') == 1",
            interval=0.05,
        )
        listed = await client.runner()
        assert listed is not None and listed["capacity_available"] == 0  # still ready, no room for another
        assert (await client.reserve(url))[0] == 503
        assert await status_at(orch) == "ready"
        await asyncio.sleep(0.5)
        assert not drained.done()

        del pod.streams["s1"]  # the stream ends
        await asyncio.wait_for(asyncio.shield(drained), 5)
        assert await client.runner() is None and "pod-0" not in orch.live_runners.runners
        assert registrar.done.is_set()


def runner_now(orch: TestOrchestrator) -> dict | None:
    runner = orch.live_runners.runners.get("pod-0")
    return None if runner is None else runner.fields


async def test_drain_grace_period_and_the_registrar_port(make_orch, stub_worker, secret_file, client_for) -> None:
    orch = await make_orch()
    client = client_for(orch)
    stub_worker.status, stub_worker.active_streams = "OK", 1  # a stream that will not end
    args = registrar_args(orch, stub_worker.url, secret_file, "--drain-seconds", "0.5")
    async with running_registrar(args) as registrar:
        server = TestServer(create_app(registrar), host="127.0.0.1")
        await server.start_server()
        base = str(server.make_url("")).rstrip("/")
        try:
            async with aiohttp.ClientSession() as http:
                await eventually(lambda: client.runner(), 10, "client.runner()", interval=0.05)
                async with http.get(base + "/health") as resp:
                    health = await resp.json()
                assert health["status"] == "running" and health["orchestrators"][0]["registered"] is True
                assert "secret" not in str(health).lower()
                async with http.get(base + "/metrics") as resp:
                    assert 'byoc_registrar_registered{orchestrator="' + orch.url + '"} 1.0' in await resp.text()

                # The worker container's preStop hook: answered once unregistered (here: after the grace period).
                loop = asyncio.get_running_loop()
                started = loop.time()
                async with http.get(base + "/drain") as resp:
                    assert resp.status == 200 and (await resp.json())["drained"] is True
                assert 0.4 < loop.time() - started < 3
                assert stub_worker.draining is True
                assert await client.runner() is None
        finally:
            await server.close()


@pytest.mark.parametrize("missing", ["--app", "--orchestrator"])
async def test_refuses_to_start_without_essentials(missing: str, secret_file) -> None:
    from byoc_runtime.registrar.config import load_config

    args = registrar_args("http://127.0.0.1:1", "http://127.0.0.1:2", secret_file)
    index = args.index(missing)
    del args[index : index + 2]
    with pytest.raises(ValueError, match=r"app|orchestrator"):
        load_config(args, {})


def test_secret_constant_is_not_trivial() -> None:
    assert len(SECRET) >= 8  # the log checks above would prove nothing with a secret like "s"


async def test_drained_before_it_started_never_registers(make_orch, stub_worker, secret_file) -> None:
    """SIGTERM can arrive while the sidecar is still starting: nothing may be left registered behind it."""
    from byoc_runtime.registrar.config import load_config
    from byoc_runtime.registrar.registrar import Registrar

    orch = await make_orch()
    registrar = Registrar(load_config(registrar_args(orch, stub_worker.url, secret_file), {}))
    await registrar.drain()
    async with asyncio.timeout(10):
        await registrar.run()
    assert not orch.live_runners.runners and registrar.worker is None


async def test_failed_heartbeats_back_off_to_the_interval(make_orch, stub_worker, secret_file) -> None:
    """A struggling orchestrator gets fewer heartbeats, not more: retries at 1, 2, 4 s, then the interval."""
    from byoc_testenv.orchestrator.faults import Fault

    orch = await make_orch()
    orch.faults.fault = Fault("status", status=500, paths=("/runners/heartbeat",))
    async with running_registrar(registrar_args(orch, stub_worker.url, secret_file)) as registrar:
        await asyncio.sleep(6.5)
        failed = heartbeats(registrar, "failed")
    assert 3 <= failed <= 5, failed  # a retry every second would be 7
