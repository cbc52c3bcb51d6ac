"""The launcher runs preStop hooks as the kubelet does: before SIGTERM, bounded by the grace period, the time they
take coming off the grace; a failing hook does not stop the stop."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from byoc_testenv import Cluster
from byoc_testenv.launcher import Launcher
from byoc_testenv.launcher.hooks import MINIMUM_GRACE_SECONDS, HookFailed, pre_stop, run_exec, run_http, run_pre_stop
from byoc_testenv.polling import wait_for

from .conftest import PY_IMAGE

CONTAINER = {"name": "worker", "ports": [{"name": "hook", "containerPort": 0}]}


async def hook_server(delay: float, seen: list[str]) -> tuple[web.AppRunner, int]:
    async def handler(request: web.Request) -> web.Response:
        seen.append(f"{request.path_qs} {request.headers.get('X-Who', '')}")
        await asyncio.sleep(delay)
        return web.Response(status=500, text="a status the kubelet does not look at")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


async def test_http_hook_named_port_headers_and_time_taken_off_the_grace() -> None:
    seen: list[str] = []
    runner, port = await hook_server(1.0, seen)
    container = {"name": "worker", "ports": [{"name": "hook", "containerPort": port}]}
    hook = {"httpGet": {"path": "/drain?wait=true", "port": "hook", "httpHeaders": [{"name": "X-Who", "value": "k"}]}}
    try:
        async with aiohttp.ClientSession() as http:
            began = time.monotonic()
            left = await run_pre_stop(hook, 10.0, lambda h: run_http(h["httpGet"], "127.0.0.1", container, http), "t")
            assert time.monotonic() - began >= 1.0
            assert 8.0 <= left <= 9.1
            assert seen == ["/drain?wait=true k"]
            # A hook that outlasts the grace is given up on; SIGTERM still gets the kubelet's minimum.
            runner_slow, slow_port = await hook_server(5.0, seen)
            try:
                slow = {"httpGet": {"path": "/", "port": slow_port}}
                began = time.monotonic()
                left = await run_pre_stop(
                    slow, 1.0, lambda h: run_http(h["httpGet"], "127.0.0.1", container, http), "t"
                )
                assert time.monotonic() - began < 10 and left == MINIMUM_GRACE_SECONDS
            finally:
                await runner_slow.cleanup()
            # Nothing listening: the hook fails, the stop goes on.
            with pytest.raises(HookFailed):
                await run_http({"port": 1, "path": "/"}, "127.0.0.1", container, http)
            with pytest.raises(HookFailed, match="no container port named"):
                await run_http({"port": "nope"}, "127.0.0.1", container, http)
    finally:
        await runner.cleanup()


async def test_exec_hook_runs_with_the_container_env_and_its_exit_status_counts(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    code = "import os, sys; print('hook', os.environ['WHO'], flush=True); sys.exit(int(sys.argv[1]))"
    local = {"python": sys.executable}.get
    assert await run_exec(["python", "-c", code, "0"], {"WHO": "w-1"}, tmp_path, log, local) == "exec 'python' exited 0"
    with pytest.raises(HookFailed, match="exited with 3"):
        await run_exec(["python", "-c", code, "3"], {"WHO": "w-1"}, tmp_path, log, local)
    with pytest.raises(HookFailed, match="not found"):
        await run_exec(["no-such-tool-here"], {}, tmp_path, log, local)
    assert log.read_text().count("hook w-1") == 2
    assert pre_stop({"lifecycle": {"preStop": {"exec": {"command": ["x"]}}}}) == {"exec": {"command": ["x"]}}
    assert pre_stop(CONTAINER) is None


# SIGTERM handler notes whether the preStop hook (which writes a file) ran before it.
SERVER = """
import os, signal, sys, time
def on_term(*_):
    print("SIGTERM after hook:", os.path.exists(sys.argv[1]), flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
print("running", flush=True)
while True:
    time.sleep(0.1)
"""
HOOK = "import sys, time; time.sleep(2); open(sys.argv[1], 'w').write('x')"


@pytest.mark.cluster
def test_deleted_pod_runs_its_exec_prestop_before_sigterm(
    e2e_cluster: Cluster, e2e_namespace: str, launcher: Launcher, tmp_path: Path
) -> None:
    ns, marker = e2e_namespace, str(tmp_path / "hook-ran")
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hooked"},
        "spec": {
            "terminationGracePeriodSeconds": 30,
            "containers": [
                {
                    "name": "main",
                    "image": PY_IMAGE,
                    "args": ["-c", SERVER, marker],
                    "lifecycle": {"preStop": {"exec": {"command": ["python", "-c", HOOK, marker]}}},
                }
            ],
        },
    }
    e2e_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(pod))
    wait_for(lambda: "running" in launcher.logs(f"{ns}/hooked"), 60, "the process running")
    began = time.monotonic()
    e2e_cluster.kubectl("delete", "-n", ns, "pod/hooked", "--wait=false")
    wait_for(lambda: f"{ns}/hooked" not in launcher.state()["pods"], 60, "the process stopped", 0.1)
    assert time.monotonic() - began >= 2  # the hook's sleep came first
    assert Path(marker).exists()
    log = "".join(p.read_text() for p in (launcher.root / "pods").glob(f"{ns}_hooked_*/main.log"))
    assert "preStop exec python" in log and "SIGTERM after hook: True" in log, log
