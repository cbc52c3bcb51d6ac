"""The router in front of a real ``byoc-runtime`` process, driven by the test orchestrator as go-livepeer would.

orchestrator (TestOrchestrator, in-process) -> router -> byoc-runtime (passthrough, 2 slots) <-> trickle server
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from byoc_edge.router.pods import StaticPods
from byoc_testenv.orchestrator import TestOrchestrator
from byoc_testenv.polling import free_port

pytestmark = pytest.mark.trickle

TOKEN = "router-test-token"


def wait_http(url: str, seconds: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {seconds} s")


def spawn(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err.decode(errors="replace")


@pytest.fixture(scope="module")
def runtime_url() -> Iterator[str]:
    """One byoc-runtime with two slots (it imports torch: a few seconds)."""
    port = free_port()
    cmd = [sys.executable, "-m", "byoc_runtime.main", "--processor", "passthrough", "--capacity", "2"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--token-env", "ROUTER_TEST_TOKEN", "--hw-codecs", "off"]
    proc = spawn(cmd, {"ROUTER_TEST_TOKEN": TOKEN})
    try:
        wait_http(f"http://127.0.0.1:{port}/health", 90, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


async def orch_call(http: aiohttp.ClientSession, orch: TestOrchestrator, path: str, body: dict[str, Any]):
    async with http.post(orch.url + path, json=body) as r:
        return r.status, await r.text()


async def runtime_streams(http: aiohttp.ClientSession, runtime_url: str) -> set[str]:
    async with http.get(runtime_url + "/stream/status", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
        return {s["stream_id"] for s in (await r.json())["sessions"]}


async def test_orchestrator_router_runtime(trickle_server, runtime_url, make_router):
    async with TestOrchestrator.start(secret="s", trickle_base_url=trickle_server.base_url) as orch:
        router = await make_router(StaticPods([runtime_url]), sessions_per_pod=2, token=TOKEN)
        async with aiohttp.ClientSession() as http:
            capability = {"name": "passthrough", "url": router.url, "capacity": 2, "token": TOKEN}
            async with http.post(orch.url + "/capability/register", json=capability, headers={"Authorization": "s"}):
                pass
            for sid in ("e2e-1", "e2e-2"):
                status, text = await orch_call(
                    http, orch, "/_test/byoc/stream/start", {"capability": "passthrough", "stream_id": sid}
                )
                assert status == 200, text
            assert await runtime_streams(http, runtime_url) == {"e2e-1", "e2e-2"}
            status, text = await orch_call(
                http, orch, "/_test/byoc/stream/start", {"capability": "passthrough", "stream_id": "e2e-3"}
            )
            assert status == 503 and '"reason": "capacity"' in text  # the runtime refused, no other pod

            # A new router (a restart, or the other replica) learns the running streams from the runtime.
            await router.close()
            replacement = await make_router(StaticPods([runtime_url]), sessions_per_pod=2, token=TOKEN)
            assert {k for p in replacement.router.pins for k in p.keys} == {"e2e-1", "e2e-2"}
            capability["url"] = replacement.url  # re-registration points the orchestrator at it
            async with http.post(orch.url + "/capability/register", json=capability, headers={"Authorization": "s"}):
                pass
            status, text = await orch_call(
                http, orch, "/_test/byoc/stream/params", {"stream_id": "e2e-2", "params": {"max_framerate": 12}}
            )
            assert status == 200, text
            for sid in ("e2e-1", "e2e-2"):
                status, text = await orch_call(http, orch, "/_test/byoc/stream/stop", {"stream_id": sid})
                assert status == 200, text
            for _ in range(50):
                if not await runtime_streams(http, runtime_url):
                    break
                await asyncio.sleep(0.1)
            assert not await runtime_streams(http, runtime_url)


def test_byoc_router_command(runtime_url):
    """The console script: flags, token from the environment, JSON logs, SIGTERM."""
    port = free_port()
    cmd = [sys.executable, "-m", "byoc_edge.router.main", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--pods", runtime_url, "--sessions-per-pod", "2", "--token-env", "MY_TOKEN", "--status-interval", "0.5"]
    began = time.monotonic()
    proc = spawn(cmd, {"MY_TOKEN": TOKEN})
    try:
        wait_http(f"http://127.0.0.1:{port}/health", 30, proc)
        started_in = time.monotonic() - began
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
            assert b'"capacity": 2' in resp.read()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/stream/status")
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(req, timeout=5)
        assert denied.value.code == 401
    finally:
        logs = stop(proc)
    assert proc.returncode == 0, logs
    assert '"msg": "byoc-router serving"' in logs and '"sessions_per_pod": 2' in logs
    assert started_in < 10, f"the router took {started_in:.1f} s to serve (it must not import torch)"
