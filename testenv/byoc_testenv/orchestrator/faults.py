"""Fault injection for the test orchestrator: fail the way a real orchestrator in trouble does.

A :class:`Fault` applies to every route except the test-only ``/_test/*`` ones (or to the path prefixes it names):

    none     answer normally
    status   answer ``status`` with ``body`` instead of calling the route (a 5xx, a 401, ...)
    delay    wait ``delay`` seconds, then answer normally (slower than a caller's timeout: it gave up, and the
             late call still takes effect, as on a real overloaded server)
    drop     close the connection without answering (a crash in the handler, a proxy that gives up)

Every request is also written to a journal (method, path, status, and a fingerprint of its ``Authorization``
header, never the header itself), so tests can tell which secret a caller sent and that nothing was repeated.

In-process: ``orch.faults.fault = Fault("status", status=503)``. Process form (``OrchestratorProcess``): the
test-only control routes ``GET|PUT|DELETE /_test/faults`` and ``GET /_test/requests``, driven by :func:`inject`,
:func:`clear` and :func:`journal` here.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import time
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from aiohttp import web

FaultMode = Literal["none", "status", "delay", "drop"]
TEST_PREFIX = "/_test/"
JOURNAL_SIZE = 10_000


class FaultError(ValueError):
    """A fault description that makes no sense."""


@dataclass(frozen=True)
class Fault:
    mode: FaultMode = "none"
    status: int = 503
    body: str = ""
    delay: float = 0.0
    paths: tuple[str, ...] = ()  # path prefixes it applies to; empty: every route but /_test/

    def __post_init__(self) -> None:
        if self.mode not in get_args(FaultMode):
            raise FaultError(f"mode must be one of {', '.join(get_args(FaultMode))}, not {self.mode!r}")
        if not 100 <= self.status <= 599:
            raise FaultError(f"status must be an HTTP status code, not {self.status}")
        if self.delay < 0:
            raise FaultError(f"delay must not be negative, not {self.delay}")

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        if not isinstance(data, dict):
            raise FaultError("a fault is a JSON object")
        unknown = set(data) - {"mode", "status", "body", "delay", "paths"}
        if unknown:
            raise FaultError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        try:
            return cls(
                mode=data.get("mode", "none"),
                status=int(data.get("status", 503)),
                body=str(data.get("body", "")),
                delay=float(data.get("delay", 0.0)),
                paths=tuple(str(p) for p in data.get("paths", ())),
            )
        except (TypeError, ValueError) as exc:
            raise FaultError(str(exc)) from exc

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "paths": list(self.paths)}

    def applies(self, path: str) -> bool:
        if self.mode == "none" or path.startswith(TEST_PREFIX):
            return False
        return not self.paths or any(path.startswith(p) for p in self.paths)


def fingerprint(authorization: str) -> str:
    """What the journal keeps of an ``Authorization`` header: enough to compare, useless to replay."""
    return hashlib.sha256(authorization.encode()).hexdigest()[:12] if authorization else ""


class Faults:
    """The fault in force and the request journal of one test orchestrator."""

    def __init__(self) -> None:
        self.fault = Fault()
        self.journal: collections.deque[dict[str, Any]] = collections.deque(maxlen=JOURNAL_SIZE)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(TEST_PREFIX):
            return await handler(request)
        fault = self.fault if self.fault.applies(request.path) else Fault()
        entry: dict[str, Any] = {
            "at": time.time(),
            "method": request.method,
            "path": request.path,
            "auth": fingerprint(request.headers.get("Authorization", "")),
            "fault": fault.mode,
            "status": None,  # None: no answer reached the caller
        }
        self.journal.append(entry)
        if fault.mode == "status":
            entry["status"] = fault.status
            return web.Response(status=fault.status, text=fault.body or f"fault injected: HTTP {fault.status}\n")
        if fault.mode == "drop":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)  # never reaches the caller
        if fault.mode == "delay":
            await request.read()  # received in full, then slow to act on it
            await asyncio.sleep(fault.delay)
        response = await handler(request)
        entry["status"] = response.status
        return response

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response(self.fault.to_json())

    async def put(self, request: web.Request) -> web.Response:
        try:
            self.fault = Fault.from_json(await request.json())
        except (ValueError, FaultError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(self.fault.to_json())

    async def delete(self, request: web.Request) -> web.Response:
        self.fault = Fault()
        return web.json_response(self.fault.to_json())

    async def requests(self, request: web.Request) -> web.Response:
        return web.json_response({"requests": list(self.journal)})

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/_test/faults", self.get)
        app.router.add_put("/_test/faults", self.put)
        app.router.add_delete("/_test/faults", self.delete)
        app.router.add_get("/_test/requests", self.requests)


# -- the control routes, from a test ------------------------------------------------------------------------


def _call(orch_url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"{orch_url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def inject(orch_url: str, fault: Fault) -> None:
    """Put ``fault`` in force on a running test orchestrator (any form: it goes through its control route)."""
    _call(orch_url, "PUT", "/_test/faults", fault.to_json())


def clear(orch_url: str) -> None:
    _call(orch_url, "DELETE", "/_test/faults")


def journal(orch_url: str, path_prefix: str = "") -> list[dict[str, Any]]:
    """The requests it received (oldest first), optionally only those under ``path_prefix``."""
    return [r for r in _call(orch_url, "GET", "/_test/requests")["requests"] if r["path"].startswith(path_prefix)]
