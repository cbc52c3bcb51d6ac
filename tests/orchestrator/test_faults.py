"""The test orchestrator's fault injection (byoc_testenv.orchestrator.faults): what callers see under each fault,
the request journal, and the control routes of the process form."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import aiohttp
import pytest
from byoc_testenv.orchestrator import OrchestratorProcess, TestOrchestrator
from byoc_testenv.orchestrator.faults import Fault, FaultError, clear, fingerprint, inject, journal

SECRET = "fault-test-secret"
CAP = {"name": "faulty", "url": "http://127.0.0.1:9", "capacity": 2}


async def register(http: aiohttp.ClientSession, orch: TestOrchestrator, seconds: float = 10) -> tuple[int, str]:
    async with http.post(
        f"{orch.url}/capability/register",
        json=CAP,
        headers={"Authorization": SECRET},
        timeout=aiohttp.ClientTimeout(total=seconds),
    ) as resp:
        return resp.status, await resp.text()


async def test_status_fault_answers_instead_of_the_route_and_spares_test_routes() -> None:
    async with TestOrchestrator.start(secret=SECRET) as orch, aiohttp.ClientSession() as http:
        orch.faults.fault = Fault("status", status=401, body="invalid authorization", paths=("/capability/",))
        assert await register(http, orch) == (401, "invalid authorization")
        assert "faulty" not in orch.capabilities.capabilities
        async with http.get(f"{orch.url}/discovery") as resp:  # outside the fault's paths
            assert resp.status == 200
        async with http.get(f"{orch.url}/_test/capabilities") as resp:
            assert resp.status == 200
        orch.faults.fault = Fault()
        assert await register(http, orch) == (200, "ok")
        assert orch.capabilities.capabilities["faulty"].capacity == 2
    entries = [e for e in orch.faults.journal if e["path"] == "/capability/register"]
    assert [(e["fault"], e["status"]) for e in entries] == [("status", 401), ("none", 200)]
    assert {e["auth"] for e in entries} == {fingerprint(SECRET)} and SECRET not in json.dumps(list(orch.faults.journal))


async def test_delay_outlasts_the_callers_timeout_and_still_takes_effect() -> None:
    async with TestOrchestrator.start(secret=SECRET) as orch, aiohttp.ClientSession() as http:
        orch.faults.fault = Fault("delay", delay=1.0)
        with pytest.raises(TimeoutError):
            await register(http, orch, seconds=0.3)
        await asyncio.sleep(1.2)
        assert "faulty" in orch.capabilities.capabilities  # a slow server still applies the late call


async def test_drop_closes_the_connection_unanswered() -> None:
    async with TestOrchestrator.start(secret=SECRET) as orch, aiohttp.ClientSession() as http:
        orch.faults.fault = Fault("drop")
        with pytest.raises(aiohttp.ClientError):
            await register(http, orch)
        assert "faulty" not in orch.capabilities.capabilities
        assert orch.faults.journal[-1]["status"] is None


def test_bad_fault_descriptions_are_refused() -> None:
    with pytest.raises(FaultError, match="mode must be one of"):
        Fault.from_json({"mode": "explode"})
    with pytest.raises(FaultError, match="unknown fault fields: code"):
        Fault.from_json({"mode": "status", "code": 500})
    with pytest.raises(FaultError, match="HTTP status code"):
        Fault("status", status=7)


def test_process_form_is_driven_through_its_control_routes_and_can_come_back_on_its_port() -> None:
    with OrchestratorProcess.start(secret=SECRET) as orch:
        inject(orch.url, Fault("status", status=503))
        req = urllib.request.Request(
            f"{orch.url}/capability/unregister", data=b"x", method="POST", headers={"Authorization": SECRET}
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 503
        bad = urllib.request.Request(f"{orch.url}/_test/faults", data=b"[]", method="PUT")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad, timeout=10)
        assert err.value.code == 400 and "JSON object" in err.value.read().decode()
        clear(orch.url)
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
        assert [e["status"] for e in journal(orch.url, "/capability/")] == [503, 200]
        port = int(orch.url.rsplit(":", 1)[1])
    with OrchestratorProcess.start(secret=SECRET, port=port) as again:  # a restart on the same address
        assert again.url == orch.url and journal(again.url) == []
