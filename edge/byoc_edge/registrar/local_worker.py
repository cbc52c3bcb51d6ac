"""What the worker in this pod says about itself, read over its REST API (protocols.md section 1).

Any image speaking the worker contract works: ``/health`` gives ``status`` (LOADING / IDLE / OK / ERROR) and,
from our runtime, ``active_streams`` and ``capacity``; ``/hardware/info`` and ``/version`` are optional
extras; ``POST /drain`` exists on our runtime only. Paths are tried at the root, then under ``/api`` (older
pytrickle releases). A single failed read does not change the state: only ``unready_after`` failures in a row
make the worker "unreachable", since a non-ready heartbeat breaks the sessions running on it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from ..liverunner import RunnerGPU

log = logging.getLogger(__name__)

UNREACHABLE = "UNREACHABLE"
HEALTH_STATES = ("LOADING", "IDLE", "OK", "ERROR")


@dataclass(frozen=True, slots=True)
class WorkerState:
    health: str = UNREACHABLE  # one of HEALTH_STATES, or UNREACHABLE
    active_streams: int | None = None  # None: the worker does not say (pytrickle: OK means streaming)
    capacity: int | None = None
    draining: bool = False

    @property
    def ready(self) -> bool:
        return self.health in ("IDLE", "OK")

    @property
    def streaming(self) -> bool:
        if self.health == UNREACHABLE:
            return False  # nothing left to wait for
        if self.active_streams is not None:
            return self.active_streams > 0
        return self.health == "OK"


def parse_health(data: Any) -> WorkerState:
    """A ``/health`` body -> state; ``ValueError`` when it is not the contract's shape."""
    if not isinstance(data, dict) or str(data.get("status", "")).upper() not in HEALTH_STATES:
        raise ValueError("health reply has no known status")

    def count(key: str) -> int | None:
        value = data.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    return WorkerState(
        health=str(data["status"]).upper(),
        active_streams=count("active_streams"),
        capacity=count("capacity") or None,
        draining=data.get("draining") is True,
    )


def parse_gpu(data: Any) -> RunnerGPU | None:
    """The first GPU of a ``/hardware/info`` body (pytrickle shape: ``gpu_info`` by device index)."""
    info = data.get("gpu_info") if isinstance(data, dict) else None
    if not isinstance(info, dict) or not info:
        return None
    index = min(info, key=lambda k: int(k) if str(k).isdigit() else 1 << 30)
    gpu = info[index]
    if not isinstance(gpu, dict):
        return None
    memory = gpu.get("memory_total")
    vram_mb = memory // (1 << 20) if isinstance(memory, int) and not isinstance(memory, bool) else 0
    found = RunnerGPU(id=str(gpu.get("id") or index), name=str(gpu.get("name") or ""), vram_mb=vram_mb)
    return found if found.name or found.vram_mb else None


class LocalWorker:
    """Reads the worker's state; ``state`` is the last known one (after tolerating transient failures)."""

    def __init__(self, url: str, http: aiohttp.ClientSession, unready_after: int = 3, timeout_s: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.http = http
        self.unready_after = unready_after
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.state = WorkerState()
        self.gpu: RunnerGPU | None = None
        self.version = ""
        self.drain_supported: bool | None = None
        self._prefix: str | None = None  # "" or "/api", learnt from /health
        self._failures = 0
        self._extras_read = False

    async def _request(self, method: str, path: str) -> tuple[int, Any]:
        """(status, JSON body or None). Until ``/health`` answered, a 404/405 at the root is retried under ``/api``."""
        prefixes = ("", "/api") if self._prefix is None or path == "/drain" else (self._prefix,)
        status, body = 404, None
        for prefix in prefixes:
            async with self.http.request(
                method, self.url + prefix + path, timeout=self.timeout, allow_redirects=False
            ) as resp:
                status = resp.status
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = None
            if status not in (404, 405):
                if path == "/health" and status < 400:
                    self._prefix = prefix
                break
        return status, body

    async def refresh(self) -> WorkerState:
        try:
            _, body = await self._request("GET", "/health")
            state = parse_health(body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self._failures += 1
            if self._failures >= self.unready_after and self.state.health != UNREACHABLE:
                log.warning("worker at %s unreachable (%d reads failed, last: %s)", self.url, self._failures, exc)
                self.state = WorkerState()
            return self.state
        if self.state.health != state.health:
            log.info("worker health %s -> %s", self.state.health, state.health)
        self._failures = 0
        self.state = state
        if not self._extras_read:
            await self._read_extras()
        return state

    async def _read_extras(self) -> None:
        """GPU and version, once: they do not change while the worker runs."""
        self._extras_read = True
        for path in ("/hardware/info", "/version"):
            try:
                status, body = await self._request("GET", path)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.debug("worker %s unreadable: %s", path, exc)
                continue
            if status != 200:
                continue
            if path == "/version" and isinstance(body, dict) and isinstance(body.get("version"), str):
                self.version = body["version"]
            elif path == "/hardware/info":
                self.gpu = parse_gpu(body)

    async def drain(self) -> bool:
        """Ask the worker to refuse new sessions; False when it has no ``/drain`` (any image but ours)."""
        try:
            status, _ = await self._request("POST", "/drain")
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("worker drain request failed: %s", exc)
            return False
        self.drain_supported = status < 400
        if self.drain_supported:
            self.state = replace(self.state, draining=True)
            log.info("worker refuses new sessions now")
        else:
            log.info("worker has no drain endpoint (%d): it is unregistered when its streams end", status)
        return self.drain_supported
