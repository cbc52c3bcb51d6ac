"""The registration modes as strategies: how a worker is announced to its orchestrators, and how it leaves them.

- BYOC (`byoc.py`): the operator registers the router's URL per capability, with the free slots the routers report.
- Live Runner dynamic (`live_runner.py`): the pods' registrar sidecars heartbeat; the operator observes /discovery.
- Live Runner static (`live_runner.py`): the operator upserts the ready pods' runners.json entries to each
  orchestrator's CLI port, and retires them.

Each returns the per-orchestrator status entries as `api.OrchestratorStatus`, the model the CRD's status schema is
generated from; the reconciler writes them with the Registered condition they imply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from byoc_operator import api
from byoc_operator.advertise import Address
from byoc_operator.index import Key
from byoc_operator.registration import Target
from byoc_operator.render.worker import Worker
from byoc_operator.slots import Slots


@dataclass(frozen=True)
class Round:
    """What one reconcile knows about a worker's registration."""

    key: Key
    worker: Worker
    ref: dict[str, Any]  # the worker, as Events name it
    targets: list[Target]
    previous: list[api.OrchestratorStatus]  # the entries the status holds now
    now: str
    pods: list[dict[str, Any]] = field(default_factory=list)  # the worker pods (not the routers)
    # BYOC: the router Service and pods as the index holds them, and who holds the capability name where.
    router_service: dict[str, Any] | None = None
    router_pods: list[dict[str, Any]] = field(default_factory=list)
    held: Callable[[], dict[str, Key]] = dict
    # Live Runner static: the ready pods' entries, and those the ConfigMap published (earlier runs).
    live: list[dict[str, Any]] = field(default_factory=list)
    published: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Registered:
    """A round's outcome: the entries, what the Registered condition should take into account, and when to look
    again."""

    entries: list[api.OrchestratorStatus]
    refresh_seconds: float
    note: str | None = None  # added to the message while some orchestrator does not list the worker
    slots: Slots | None = None  # BYOC: what the routers can place (None: no router answered)
    routed: bool = False
    address: Address | None = None  # BYOC: the URL registered (status.endpoint)


@dataclass(frozen=True)
class Leaving:
    """A deleted worker's round: the orchestrators where leaving failed (retried; they hold the finalizer), or,
    while streams still run (BYOC), the status to write meanwhile."""

    failed: list[api.OrchestratorStatus]
    waiting: Registered | None = None


class RegistrationStrategy(Protocol):
    def holds_finalizer(self, worker: Worker, targets: list[Target]) -> bool:
        """Whether the operator must act before the worker may go (its registrations are the operator's)."""
        ...

    async def register(self, round_: Round) -> Registered: ...

    async def unregister(self, round_: Round, grace_over: bool) -> Leaving:
        """Leave every orchestrator; `grace_over`: the drain grace of a deleted worker's streams is over."""
        ...

    def forget(self, key: Key) -> None:
        """Drop what is remembered of a worker that is gone."""
        ...

    async def close(self) -> None: ...
