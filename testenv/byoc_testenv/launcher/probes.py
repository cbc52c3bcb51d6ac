"""Container probes (startup, readiness, liveness) run against a local process, with the kubelet's rules:
an HTTP answer 200-399 or an accepted TCP connection passes; ``failureThreshold`` failures in a row fail."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from dataclasses import dataclass
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

Obj = dict[str, Any]


@dataclass(frozen=True)
class Probe:
    kind: str  # httpGet | tcpSocket | exec | grpc
    action: Obj
    initial_delay: float
    period: float
    timeout: float
    failure_threshold: int
    success_threshold: int

    @classmethod
    def from_spec(cls, spec: Obj, max_period: float | None = None) -> Probe:
        """``max_period`` shortens the period (tests need not wait 10 s a probe) and raises the failure
        threshold to match, so the time a probe may keep failing stays what the pod asked for."""
        kind = next((k for k in ("httpGet", "tcpSocket", "exec", "grpc") if k in spec), "none")
        period = float(spec.get("periodSeconds", 10))
        failures = int(spec.get("failureThreshold", 3))
        if max_period is not None and period > max_period:
            failures = math.ceil(failures * period / max_period)
            period = max_period
        delay = float(spec.get("initialDelaySeconds", 0))
        if max_period is not None:
            delay = min(delay, max_period)
        return cls(kind, spec.get(kind) or {}, delay, period, float(spec.get("timeoutSeconds", 1)), failures,
                   int(spec.get("successThreshold", 1)))


def resolve_port(port: Any, container: Obj) -> int | None:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for cp in container.get("ports") or []:
        if cp.get("name") == port:
            return int(cp["containerPort"])
    return None


async def check(probe: Probe, pod_ip: str, container: Obj, http: aiohttp.ClientSession) -> tuple[bool, str]:
    """One probe: (passed, what was seen)."""
    if probe.kind == "httpGet":
        port = resolve_port(probe.action.get("port"), container)
        if port is None:
            return False, f"no container port named {probe.action.get('port')!r}"
        scheme = str(probe.action.get("scheme", "HTTP")).lower()
        host = probe.action.get("host") or pod_ip
        url = f"{scheme}://{host}:{port}{probe.action.get('path', '/')}"
        headers = {h["name"]: h["value"] for h in probe.action.get("httpHeaders") or []}
        try:
            async with http.get(url, headers=headers, ssl=False, allow_redirects=False,
                                timeout=aiohttp.ClientTimeout(total=probe.timeout)) as resp:
                await resp.read()
                return 200 <= resp.status < 400, f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return False, f"GET {url}: {exc!r}"
    if probe.kind == "tcpSocket":
        port = resolve_port(probe.action.get("port"), container)
        if port is None:
            return False, f"no container port named {probe.action.get('port')!r}"
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(probe.action.get("host") or pod_ip, port),
                                               probe.timeout)
        except (OSError, TimeoutError) as exc:
            return False, repr(exc)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True, "connected"
    # exec and grpc probes would need the container's own tools: they pass, and the log says so once.
    return True, f"{probe.kind} probe not run by the launcher (passes)"


class ProbeLoop:
    """Runs one probe every period and keeps the kubelet's verdict: ``ok`` after ``success_threshold`` passes,
    not ok after ``failure_threshold`` failures. ``changed`` is set whenever the verdict flips."""

    def __init__(self, name: str, probe: Probe, pod_ip: str, container: Obj, http: aiohttp.ClientSession,
                 initially: bool = False) -> None:
        self.name = name
        self.probe = probe
        self.pod_ip = pod_ip
        self.container = container
        self.http = http
        self.ok = initially
        self.failures = 0
        self.last = ""
        self.changed = asyncio.Event()

    async def run(self, until_first_success: bool = False) -> bool:
        """Probe forever; with until_first_success, return True on the first verdict ok, False when the
        failure threshold is reached first."""
        await asyncio.sleep(self.probe.initial_delay)
        successes = 0
        while True:
            passed, self.last = await check(self.probe, self.pod_ip, self.container, self.http)
            if passed:
                successes, self.failures = successes + 1, 0
                if not self.ok and successes >= self.probe.success_threshold:
                    self._set(True)
                if until_first_success and self.ok:
                    return True
            else:
                successes, self.failures = 0, self.failures + 1
                if self.failures >= self.probe.failure_threshold:
                    if self.ok:
                        self._set(False)
                    if until_first_success:
                        return False
            await asyncio.sleep(self.probe.period)

    def _set(self, ok: bool) -> None:
        self.ok = ok
        log.debug("%s probe -> %s (%s)", self.name, ok, self.last)
        self.changed.set()
