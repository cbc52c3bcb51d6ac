"""The edge distribution installs and runs on its own: a fresh virtualenv gets ``pip install ./edge`` (what
Dockerfile.edge runs), cannot import torch, PyAV or numpy, and its ``byoc-router``, ``byoc-registrar`` and
``byoc-drain`` serve and call real HTTP on 127.0.0.1. Slow (a venv and an install, about a minute): pip's cache
holds the wheels after the first run."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from byoc_testenv.polling import free_port

from tests.router.fake_pod import FakePod

from .dockerfile import ROOT

HEAVY = ("torch", "av", "numpy")


@pytest.fixture(scope="module")
def edge_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    venv = tmp_path_factory.mktemp("edge") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    res = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-compile", "-q", str(ROOT / "edge")],
        capture_output=True,
        text=True,
        timeout=600,
        env=clean_env(),
    )
    assert res.returncode == 0, res.stdout + res.stderr
    yield venv


def clean_env(**extra: str) -> dict[str, str]:
    """This machine's environment without the test run's PYTHONPATH (which points at the source trees)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **extra}


def test_the_edge_venv_has_no_torch_pyav_or_numpy(edge_venv: Path, tmp_path: Path) -> None:
    python = str(edge_venv / "bin" / "python")
    for module in HEAVY:
        res = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True, cwd=tmp_path)
        assert res.returncode != 0 and "ModuleNotFoundError" in res.stderr, (module, res.stderr)
    code = (
        "import sys, byoc_edge.router.main, byoc_edge.registrar.main, byoc_edge.drain, byoc_edge.rest; "
        "print(byoc_edge.__file__); print(sorted(m for m in sys.modules if m.split('.')[0] == 'byoc_runtime'))"
    )
    res = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=clean_env())
    assert res.returncode == 0, res.stderr
    installed, runtime_modules = res.stdout.splitlines()
    assert str(edge_venv) in installed and runtime_modules == "[]"  # the installed copy, not the source tree


@contextlib.asynccontextmanager
async def process(argv: list[str], env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def until_up(http: aiohttp.ClientSession, url: str, proc: asyncio.subprocess.Process) -> tuple[int, Any]:
    for _ in range(300):
        if proc.returncode is not None:
            out = await proc.stdout.read() if proc.stdout else b""
            raise AssertionError(f"exited with {proc.returncode}: {out.decode(errors='replace')[-3000:]}")
        try:
            async with http.get(url) as resp:
                return resp.status, await resp.json()
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered")


async def test_router_and_drain_only_registrar_serve_from_the_edge_venv(edge_venv: Path) -> None:
    bin_dir = edge_venv / "bin"
    async with FakePod.start(capacity=1) as pod, aiohttp.ClientSession() as http:
        port = free_port()
        argv = [str(bin_dir / "byoc-router"), "--host=127.0.0.1", f"--port={port}", f"--pods={pod.url}"]
        async with process([*argv, "--sessions-per-pod=1"], clean_env()) as router:
            status, health = await until_up(http, f"http://127.0.0.1:{port}/health", router)
            assert (status, health["pods"], health["capacity"]) == (200, 1, 1), health
            start = {"gateway_request_id": "edge-1", "params": {}}
            async with http.post(f"http://127.0.0.1:{port}/stream/start", json=start) as resp:
                assert resp.status == 200, await resp.text()
            assert "edge-1" in pod.streams  # placed on the pod over real HTTP
            async with http.post(f"http://127.0.0.1:{port}/stream/start", json={"gateway_request_id": "edge-2"}) as r:
                full = await r.json()
            assert (r.status, full["reason"], full["status"]) == (503, "capacity", "error"), full
            assert pod.url.split("//")[1] not in str(full)  # no pod address in a refusal

        registrar_port = free_port()
        argv = [
            str(bin_dir / "byoc-registrar"),
            "--drain-only",
            f"--worker-url={pod.url}",
            "--host=127.0.0.1",
            f"--port={registrar_port}",
            "--probe-interval=0.2",
            "--log-format=text",
        ]
        async with process(argv, clean_env()) as registrar:
            status, health = await until_up(http, f"http://127.0.0.1:{registrar_port}/health", registrar)
            assert (status, health["status"], health["orchestrators"]) == (200, "running", []), health
            pod.streams.clear()  # the stream ended: a drain finds the worker idle
            async with http.get(f"http://127.0.0.1:{registrar_port}/drain") as resp:
                assert (resp.status, (await resp.json())["drained"]) == (200, True)
            assert await asyncio.wait_for(registrar.wait(), 30) == 0


async def test_the_drain_hook_runs_from_the_edge_venv(edge_venv: Path) -> None:
    calls: list[str] = []

    async def drain(request: web.Request) -> web.Response:
        calls.append(request.path_qs)
        return web.json_response({"status": "success", "draining": True, "drained": True})

    app = web.Application()
    app.router.add_get("/drain", drain)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        env = clean_env(BYOC_PORT=str(port), BYOC_HOST="127.0.0.1")
        async with process([str(edge_venv / "bin" / "byoc-drain")], env) as hook:
            assert await asyncio.wait_for(hook.wait(), 30) == 0
        assert calls == ["/drain?wait=true"]
    finally:
        await runner.cleanup()
