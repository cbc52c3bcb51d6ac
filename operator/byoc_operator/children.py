"""Writing a worker's children: server-side apply of what differs, the generated token created once, what the spec
no longer asks for deleted, and nothing written over an object another owner holds."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from lightkube import ApiError, AsyncClient, codecs
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Secret, Service
from lightkube.resources.networking_v1 import NetworkPolicy
from lightkube.resources.policy_v1 import PodDisruptionBudget

from byoc_operator import metrics
from byoc_operator.drift import contains
from byoc_operator.index import Indexes, Key, child
from byoc_operator.render import Worker
from byoc_operator.render.origins import origins_configmap_name
from byoc_operator.render.runners import configmap_name
from byoc_operator.render.token import render_token_secret
from byoc_operator.render.worker import FIELD_MANAGER

log = logging.getLogger(__name__)

# After an apply, the index may lag the API server by a moment; don't re-apply the same object meanwhile.
APPLY_SETTLE_SECONDS = 15.0


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def revision(obj: dict[str, Any]) -> str:
    """What changes when an object's desired state changes: generation where kept (spec edits only), else
    the resourceVersion."""
    meta = obj.get("metadata") or {}
    return f"g{meta['generation']}" if meta.get("generation") else f"rv{meta.get('resourceVersion')}"


CHILD_RESOURCES: dict[str, Any] = {
    r.__name__: r for r in (Deployment, Service, ConfigMap, NetworkPolicy, PodDisruptionBudget, Secret)
}


def owned_by(obj: dict[str, Any], uid: str) -> bool:
    """Whether this worker (by uid, so not an earlier worker of the same name) owns the object."""
    return any(ref.get("uid") == uid for ref in (obj.get("metadata") or {}).get("ownerReferences") or [])


def name_conflict_message(worker: Worker, taken: str) -> str:
    return (
        f"{taken} already exists and does not belong to this BYOCWorker, so the operator leaves it untouched and "
        f"creates nothing: rename the BYOCWorker (its objects are named {worker.name}, {worker.router_name}, "
        f"{worker.pods_service_name}, {configmap_name(worker)}, {worker.token_secret_name}) or remove that "
        f"{taken.split()[0]}"
    )


def optional_children(worker: Worker) -> list[tuple[Any, str]]:
    """Children some specs have and others not, as (resource, name)."""
    return [
        (Deployment, worker.router_name),
        (Service, worker.router_name),
        (Service, worker.pods_service_name),
        (PodDisruptionBudget, worker.name),
        (NetworkPolicy, worker.name),
        (NetworkPolicy, worker.router_name),
        (ConfigMap, configmap_name(worker)),
        (ConfigMap, origins_configmap_name(worker)),
        (Secret, worker.token_secret_name),
    ]


# What was rendered, as a digest on the child. `contains` only sees that the live object has every rendered field,
# so a field dropped from the spec (a pod annotation, a node selector) would stay forever; the digest changes
# with it, the child is applied again, and server-side apply removes what the operator no longer sets.
RENDERED_ANNOTATION = "byoc.livepeer.org/rendered"


def stamped(desired: dict[str, Any], want: str) -> dict[str, Any]:
    meta = desired["metadata"]
    annotations = {**(meta.get("annotations") or {}), RENDERED_ANNOTATION: want[:16]}
    return {**desired, "metadata": {**meta, "annotations": annotations}}


@dataclass(frozen=True)
class Applied:
    """The last spec we applied to a child, and the child's revision right after."""

    digest: str
    revision: str
    at: float


class Children:
    """Applies one worker's rendered children, remembering what it applied (`Applied`) to tell the API server's
    normalisation from drift."""

    def __init__(self, client: AsyncClient, indexes: Indexes) -> None:
        self.client = client
        self._indexes = indexes
        self._applied: dict[tuple[str, str, str], Applied] = {}

    async def name_taken(self, key: Key, worker: Worker, children: list[dict[str, Any]]) -> str | None:
        """The first child ("Kind name") whose name an object this worker does not own holds. Server-side apply
        would take such an object over (and the garbage collector delete it with the worker), so nothing is
        written. Objects outside the index (not labelled as this worker's) are looked up before their creation."""
        for desired in children:
            kind, name = desired["kind"], desired["metadata"]["name"]
            live = child(self._indexes.of_kind(kind), key, name)
            if live is None:
                applied = self._applied.get((kind, key[0], name))
                if applied and time.monotonic() - applied.at < APPLY_SETTLE_SECONDS:
                    continue  # ours, just created; the index has not caught up yet
                # A list by name, not a get: the operator's RBAC has list on its children's kinds, not get.
                found = self.client.list(CHILD_RESOURCES[kind], namespace=key[0], fields={"metadata.name": name})
                matches = [obj.to_dict() async for obj in found]
                if not matches:
                    continue
                live = matches[0]
            if not owned_by(live, worker.uid):
                return f"{kind} {name}"
        return None

    async def ensure_token(self, key: Key, worker: Worker) -> None:
        """Create the generated worker token once. Created, never applied: the token is random, and rewriting it
        would rotate it on every run."""
        name = worker.token_secret_name
        ref = ("Secret", key[0], name)
        applied = self._applied.get(ref)
        if child(self._indexes.token_secrets, key, name) is not None or (
            applied and time.monotonic() - applied.at < APPLY_SETTLE_SECONDS
        ):
            return
        log.info("creating Secret %s/%s (a generated worker token)", key[0], name)
        secret = render_token_secret(worker, secrets.token_urlsafe(32))
        try:
            await self.client.create(codecs.from_dict(secret), field_manager=FIELD_MANAGER)
        except ApiError as exc:
            if exc.status.code != 409:  # 409: created meanwhile (ours: _name_taken saw to that)
                raise
        metrics.API_WRITES.labels("create", "Secret").inc()
        self._applied[ref] = Applied("", "", time.monotonic())

    async def remove_unwanted(self, key: Key, worker: Worker, children: list[dict[str, Any]]) -> None:
        """Delete children the spec no longer asks for (the router once BYOC is off, a dropped budget...)."""
        wanted = {(c["kind"], c["metadata"]["name"]) for c in children}
        for resource, name in optional_children(worker):
            kind = resource.__name__
            live = child(self._indexes.of_kind(kind), key, name)
            if (kind, name) in wanted or live is None or not owned_by(live, worker.uid):
                continue
            with contextlib.suppress(ApiError):
                await self.client.delete(resource, name, namespace=key[0])
                metrics.API_WRITES.labels("delete", kind).inc()

    async def ensure(self, key: Key, desired: dict[str, Any]) -> None:
        """Server-side apply the child if the live one is missing or differs from what we render."""
        kind, name = desired["kind"], desired["metadata"]["name"]
        want = digest(desired)
        desired = stamped(desired, want)
        live = child(self._indexes.of_kind(kind), key, name)
        ref = (kind, key[0], name)
        if live is not None and contains(live, desired):
            self._applied.pop(ref, None)
            return
        applied = self._applied.get(ref)
        if applied and applied.digest == want:
            if live is None and time.monotonic() - applied.at < APPLY_SETTLE_SECONDS:
                return  # we just created it; the index has not caught up yet
            if live is not None and revision(live) == applied.revision:
                # Nobody changed it since we applied this very spec: what differs is the API server's
                # normalisation (dropped unknown fields, canonical quantities), not drift.
                return
        log.info("applying %s %s/%s (%s)", kind, key[0], name, "create" if live is None else "drift or change")
        result = await self.client.apply(codecs.from_dict(desired), field_manager=FIELD_MANAGER, force=True)
        metrics.API_WRITES.labels("apply", kind).inc()
        self._applied[ref] = Applied(want, revision(result.to_dict()), time.monotonic())
