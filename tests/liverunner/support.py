"""Helpers shared by the Live Runner and registrar tests: a client of the orchestrator's Live Runner API, and
the registrar run in-process next to a worker."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from byoc_runtime.media.testsource import SourceSpec, generate_segments
from byoc_runtime.registrar.config import load_config
from byoc_runtime.registrar.registrar import Registrar
from byoc_testenv.orchestrator import TestOrchestrator

SECRET = "orch-secret-Zq8w"
APP = "live-video-to-video/grayscale"


@dataclass
class Reservation:
    session_id: str
    app_url: str
    control_url: str


@dataclass
class LiveRunnerClient:
    """What a client (gateway) does: discover, reserve a session, call the app through the proxy, stop."""

    orch_url: str
    http: aiohttp.ClientSession

    async def runners(self) -> list[dict[str, Any]]:
        async with self.http.get(self.orch_url + "/discovery") as resp:
            assert resp.status == 200
            (entry,) = await resp.json()
            return entry.get("runners", [])

    async def runner(self) -> dict[str, Any] | None:
        found = await self.runners()
        return found[0] if found else None

    async def reserve(self, url: str) -> tuple[int, Reservation | str]:
        async with self.http.post(url) as resp:
            if resp.status != 200:
                return resp.status, await resp.text()
            data = await resp.json()
            return 200, Reservation(data["session_id"], data["app_url"], data["control_url"])

    async def call(self, reservation: Reservation, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        method = kw.pop("method", "POST")
        async with self.http.request(method, reservation.app_url + path, json=body, **kw) as resp:
            data = await resp.json(content_type=None) if resp.content_type == "application/json" else await resp.text()
            return resp.status, data

    async def stop(self, reservation: Reservation) -> int:
        async with self.http.post(reservation.control_url + "/stop") as resp:
            return resp.status


def registrar_args(orch: TestOrchestrator | str, worker_url: str, secret_file: Path, *extra: str) -> list[str]:
    url = orch if isinstance(orch, str) else orch.url
    return [
        "--orchestrator", url, "--secret-file", str(secret_file), "--app", APP, "--worker-url", worker_url,
        "--runner-url", worker_url, "--runner-id", "pod-0", "--probe-interval", "0.1", "--request-timeout", "2",
        "--port", "0", *extra,
    ]  # fmt: skip


@contextlib.asynccontextmanager
async def running_registrar(args: list[str], environ: dict[str, str] | None = None) -> AsyncIterator[Registrar]:
    """The registrar in this process; on exit it drains with no grace (``hurry``) and is closed."""
    registrar = Registrar(load_config(args, environ or {}))
    task = asyncio.create_task(registrar.run())
    try:
        async with asyncio.timeout(10):
            while registrar.worker is None or not registrar.registrations:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield registrar
    finally:
        if not task.done():
            registrar.hurry()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await asyncio.shield(task)
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@functools.cache
def _segments(spec: SourceSpec) -> tuple[bytes, ...]:
    return tuple(generate_segments(spec))


def media_segments(**spec: Any) -> list[bytes]:
    """Synthetic MPEG-TS segments (H.264 + Opus, 1 s each), generated once per spec."""
    return list(_segments(SourceSpec(**spec)))
