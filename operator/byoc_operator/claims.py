"""Which worker holds a capability name on an orchestrator. Pure.

An orchestrator keeps one URL per capability name (go-livepeer core/external_capabilities.go): a second worker
registering the same name there would take the first one's traffic and payments, and its unregister would remove
the first one's registration. So for each (orchestrator URL, capability) one worker holds it, in any namespace:
the one created first (then by namespace and name). The others are not registered there and say who holds it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pydantic

from byoc_operator import api
from byoc_operator.index import Key


@dataclass(frozen=True, order=True)
class Claim:
    """One BYOC worker's wish to register `capability` with the orchestrators at `urls`."""

    created: str  # metadata.creationTimestamp (RFC 3339, UTC: orders as text)
    worker: Key
    capability: str
    urls: frozenset[str]

    @property
    def rank(self) -> tuple[str, Key]:
        return self.created, self.worker


def capability_of(body: dict[str, Any]) -> str | None:
    """The capability a BYOC worker registers, from its object as stored (the API server fills the defaults);
    None for other protocols."""
    spec = body.get("spec") or {}
    try:
        mode = api.Registration.model_validate(spec.get("registration") or {}).mode
    except pydantic.ValidationError:
        return None  # a spec the operator does not reconcile registers nothing
    if mode is not api.RegistrationMode.BYOC:
        return None
    return str((spec.get("capability") or {}).get("name") or "") or None


def holders(mine: Claim, others: Iterable[Claim]) -> dict[str, Key]:
    """For each of my orchestrator URLs that another worker holds for my capability: that worker."""
    held: dict[str, Key] = {}
    best: dict[str, Claim] = {}
    for other in others:
        if other.worker == mine.worker or other.capability != mine.capability or other.rank >= mine.rank:
            continue
        for url in other.urls & mine.urls:
            if url not in best or other.rank < best[url].rank:
                best[url] = other
    for url, claim in best.items():
        held[url] = claim.worker
    return held
