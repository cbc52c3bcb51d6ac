"""BYOC capacity: the free session slots a worker's routers can place, which is what orchestrators are told.

Why free slots and not the total (go-livepeer ``core/external_capabilities.go`` ``RegisterCapability``,
``core/ai_orchestrator.go`` ``ReserveExternalCapabilityCapacity``/``FreeExternalCapabilityCapacity``/
``GetUrlForCapability``): every ``/capability/register`` replaces the entry, so the orchestrator's in-use count
(``Load``) starts again at 0; a stream start adds 1 and its end takes 1 away (below 0 too), nothing enforces the
capacity, and gateways see ``capacity - Load``. Registering the free slots F while A streams run makes that
figure right from then on: a new stream gives F-1, the end of one of the A gives F+1, exactly the free slots.
Anything else the orchestrator cannot see (streams started through another orchestrator, a pod joining or
draining) changes what the routers report, and the operator registers again; so it re-registers whenever the
routers' free or active counts change, and every refresh period besides.

The routers are asked, not the pods: a router places only on pods it knows and has polled, so a pod the
Deployment counts as ready but the routers do not know yet is not advertised (a scale-up must not be sold
before it can be placed). With two router replicas the smaller figure is taken: the orchestrator's call may go
to either.

`parse_router_health` and `combine` are pure; `RouterSlots` does the HTTP.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp

from byoc_operator.render.router import router_selector
from byoc_operator.render.worker import ROUTER_PORT, Worker
from byoc_operator.replies import json_reply

ROUTER_TIMEOUT_SECONDS = 3.0
# How often the routers are asked while a worker is registered: the orchestrators' figure is wrong from a change
# to the next registration, so this bounds how long it may be.
POLL_SECONDS = 5.0


@dataclass(frozen=True)
class Slots:
    """What the routers can place now: free slots, and the streams running (on every pod they know)."""

    free: int
    active: int

    def describe(self) -> str:
        return f"{self.free} free, {self.active} streams running"


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def parse_router_health(data: Any) -> Slots | None:
    """A router's ``GET /health`` (``byoc_edge/router/fleet.py`` ``Fleet.health``); None when unreadable."""
    if not isinstance(data, dict):
        return None
    free, active = _count(data.get("available")), _count(data.get("active_streams"))
    if free is None or active is None:
        return None
    return Slots(free, active)


def combine(answers: list[Slots | None]) -> Slots | None:
    """The routers together: the fewest free slots any of them can place, the most streams any of them knows.
    None when no router answered."""
    known = [a for a in answers if a is not None]
    if not known:
        return None
    return Slots(min(a.free for a in known), max(a.active for a in known))


def router_addresses(worker: Worker, pods: list[dict[str, Any]]) -> list[str]:
    """Base URLs of this worker's running router pods (ready or not: a router that is up answers its health)."""
    selector = router_selector(worker)
    out = []
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        labels = meta.get("labels") or {}
        if any(labels.get(k) != v for k, v in selector.items()) or meta.get("deletionTimestamp"):
            continue
        if status.get("podIP") and status.get("phase", "Running") == "Running":
            out.append(f"http://{status['podIP']}:{ROUTER_PORT}")
    return sorted(out)


class RouterSlots:
    """Asks each router pod's ``/health`` what it can place."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def read(self, addresses: list[str]) -> Slots | None:
        if not addresses:
            return None
        return combine(list(await asyncio.gather(*(self._health(url) for url in addresses))))

    async def _health(self, base_url: str) -> Slots | None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=ROUTER_TIMEOUT_SECONDS), cookie_jar=aiohttp.DummyCookieJar()
            )
        try:
            async with self._session.get(f"{base_url}/health", allow_redirects=False) as resp:
                if resp.status != 200:
                    return None
                return parse_router_health(await json_reply(resp))
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
