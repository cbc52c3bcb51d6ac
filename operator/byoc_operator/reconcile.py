"""The reconcile loop: read the worker and its children from memory, render, apply what differs, write status.

Level-based: each run recomputes the desired state from the BYOCWorker and what the cluster shows, whatever
event woke it. Runs for one worker are serialised and coalesced (a burst of pod events is one run), and a run
with nothing changed makes no API request at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import kopf
import pydantic
from lightkube import ApiError, AsyncClient, codecs
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Secret, Service
from lightkube.resources.networking_v1 import NetworkPolicy
from lightkube.resources.policy_v1 import PodDisruptionBudget
from lightkube.types import PatchType

from byoc_operator import api, metrics, registration
from byoc_operator.advertise import Address, advertised_address
from byoc_operator.autoscale import Autoscaler
from byoc_operator.claims import Claim, capability_of, holders
from byoc_operator.drift import contains
from byoc_operator.index import Key, first
from byoc_operator.orchestrator import Fleet
from byoc_operator.pod_policy import PodPolicy
from byoc_operator.pod_policy import refusal as policy_refusal
from byoc_operator.render import Worker, render_deployment, render_service
from byoc_operator.render.deployment import node_refusal
from byoc_operator.render.network import render_network_policies
from byoc_operator.render.origins import origins_configmap_name, render_origins_configmap, restricts_origins
from byoc_operator.render.placement import render_disruption_budget
from byoc_operator.render.router import render_pods_service, render_router_deployment, render_router_service
from byoc_operator.render.runners import (
    configmap_entries,
    configmap_name,
    render_runners_configmap,
    runner_entries,
    uses_static_runners,
)
from byoc_operator.render.token import render_token_secret
from byoc_operator.render.worker import FIELD_MANAGER
from byoc_operator.slots import POLL_SECONDS as SLOTS_POLL_SECONDS
from byoc_operator.slots import RouterSlots, Slots, router_addresses
from byoc_operator.static_runners import static_note
from byoc_operator.status import (
    compute_status,
    invalid_spec_status,
    is_worker_pod,
    pod_problem,
    transitions,
    with_registration,
)

log = logging.getLogger(__name__)

BYOCWorkerResource = create_namespaced_resource(api.GROUP, api.VERSION, api.KIND, api.PLURAL)

# Deleting a worker waits this many failed attempts to leave its orchestrators before giving up.
UNREGISTER_ATTEMPTS = 5

# Live Runner dynamic: how soon to re-read /discovery while it does not match the ready pods yet (upstream's
# heartbeat interval is 5 s).
RUNNERS_RECHECK_SECONDS = 5.0

# After an apply, the index may lag the API server by a moment; don't re-apply the same object meanwhile.
APPLY_SETTLE_SECONDS = 15.0


def utcnow() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def spec_error_message(error: pydantic.ValidationError) -> str:
    parts = []
    for e in error.errors(include_url=False):
        where = ".".join(str(p) for p in ("spec", *e["loc"]))
        parts.append(f"{where}: {e['msg']}")
    return "invalid spec: " + "; ".join(parts)


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


@dataclass
class Indexes:
    """The kopf indexes the reconciler reads from (bound on the first handler call)."""

    workers: Any
    deployments: Any
    services: Any
    pods: Any
    orchestrator_secrets: Any
    orchestrators: Any  # BYOCOrchestrators by name
    namespaces: Any  # namespace labels by name
    disruption_budgets: Any
    network_policies: Any
    configmaps: Any
    token_secrets: Any

    def of_kind(self, kind: str) -> Any:
        """The index holding this worker child kind."""
        return {
            "Deployment": self.deployments,
            "Service": self.services,
            "PodDisruptionBudget": self.disruption_budgets,
            "NetworkPolicy": self.network_policies,
            "ConfigMap": self.configmaps,
            "Secret": self.token_secrets,
        }[kind]


EventPoster = Callable[[dict[str, Any], str, str, str], None]


def post_kopf_event(body: dict[str, Any], type_: str, reason: str, message: str) -> None:
    kopf.event(body, type=type_, reason=reason, message=message)  # type: ignore[arg-type]


class Reconciler:
    def __init__(
        self,
        client: AsyncClient,
        runtime_image: str,
        *,
        concurrency: int = 32,
        post_event: EventPoster = post_kopf_event,
        clock: Callable[[], str] = utcnow,
        token_propagation_seconds: float = registration.TOKEN_PROPAGATION_SECONDS,
        policy: PodPolicy | None = None,
        operator_namespace: str | None = None,
        namespace_orchestrators: bool = False,
        edge_image: str = "",
    ) -> None:
        self.client = client
        self.runtime_image = runtime_image
        self.edge_image = edge_image
        self.policy = policy or PodPolicy()
        # Where BYOCOrchestrators' Secrets are (None: unknown, so none can be used).
        self.operator_namespace = operator_namespace
        # Whether a namespace may bring its own orchestrators (spec.orchestrators, labelled fleet Secrets).
        self.namespace_orchestrators = namespace_orchestrators
        self.indexes: Indexes | None = None
        self._post_event = post_event
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._dirty: set[Key] = set()
        self._running: dict[Key, asyncio.Task[None]] = {}
        self._retries: dict[Key, int] = {}
        self._applied: dict[tuple[str, str, str], Applied] = {}
        self._written_status: dict[Key, dict[str, Any]] = {}
        self._refresh: dict[Key, asyncio.TimerHandle] = {}
        self.fleet = Fleet(client, post_event, token_propagation_seconds)
        self.autoscaler = Autoscaler(client, BYOCWorkerResource, post_event, clock)
        self.router_slots = RouterSlots()
        self._autoscale_timers: dict[Key, asyncio.TimerHandle] = {}

    async def close(self) -> None:
        """Stop queued and running reconciles, then the client (operator shutdown)."""
        self._dirty.clear()
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
        for handle in [*self._refresh.values(), *self._autoscale_timers.values()]:
            handle.cancel()
        await self.fleet.close()
        await self.autoscaler.close()
        await self.router_slots.close()
        await self.client.close()

    def bind(self, indexes: Indexes) -> None:
        self.indexes = indexes

    # -- scheduling -------------------------------------------------------------------------------------------

    def trigger(self, key: Key) -> None:
        """Ask for a reconcile of this worker soon; many triggers before it runs make one run."""
        self._dirty.add(key)
        if key not in self._running:
            self._running[key] = asyncio.create_task(self._drain(key), name=f"reconcile {key[0]}/{key[1]}")

    def trigger_all(self) -> None:
        if self.indexes is None:
            return
        for key in list(self.indexes.workers.keys()):
            self.trigger(key)

    def trigger_capability(self, capability: str) -> None:
        """Reconcile every BYOC worker registering this capability name."""
        if self.indexes is None:
            return
        for key in list(self.indexes.workers.keys()):
            body = first(self.indexes.workers.get(key))
            if body is not None and capability_of(body) == capability:
                self.trigger(key)

    async def idle(self) -> None:
        """Wait until no reconcile is queued or running (tests and the benchmark use this)."""
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    async def _drain(self, key: Key) -> None:
        try:
            while key in self._dirty:
                self._dirty.discard(key)
                async with self._slots:
                    try:
                        with metrics.RECONCILE_SECONDS.time():
                            await self.reconcile(key)
                        metrics.RECONCILES.labels("ok").inc()
                        self._retries.pop(key, None)
                    except Exception as exc:  # one bad object must never stop the others
                        metrics.RECONCILES.labels("error").inc()
                        self._schedule_retry(key, exc)
        finally:
            self._running.pop(key, None)

    def _schedule_retry(self, key: Key, exc: BaseException) -> None:
        attempt = self._retries.get(key, 0) + 1
        self._retries[key] = attempt
        delay = min(300.0, 2.0**attempt)
        log.warning("reconcile of %s/%s failed (attempt %d, retry in %.0fs): %s", *key, attempt, delay, exc)
        asyncio.get_running_loop().call_later(delay, self.trigger, key)

    # -- one run ----------------------------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        if self.indexes is None:
            raise RuntimeError("indexes not bound yet")
        body = first(self.indexes.workers.get(key))
        if body is None:
            self._written_status.pop(key, None)
            self.fleet.forget(key)
            self.autoscaler.forget(key)
            return  # gone: ownerReferences let the garbage collector remove the children
        deleting = bool(body["metadata"].get("deletionTimestamp"))
        try:
            worker = Worker.from_body(body, self.runtime_image, self.policy, self.edge_image)
        except pydantic.ValidationError as exc:
            if deleting:
                await self._set_finalizer(key, body, present=False)
                return
            # The API server's schema should have refused this; report it rather than crash.
            await self._write_status(key, body, invalid_spec_status(body, spec_error_message(exc), self._clock()))
            return
        refusal = None if deleting else node_refusal(worker) or policy_refusal(worker.spec, self.policy)
        if refusal:
            await self._write_status(key, body, invalid_spec_status(body, f"invalid spec: {refusal}", self._clock()))
            return
        targets, refused = self._targets(key[0], worker)
        if not self.namespace_orchestrators:
            worker = registration.without_own(worker)  # nor rendered (a registrar mounting the namespace's Secret)
        if deleting:
            await self._unregister_all(key, worker, body, targets)
            return
        # BYOC registrations are the operator's to remove; Live Runner pods unregister themselves.
        if worker.uses_router or self._retires_runners(worker, targets):
            await self._set_finalizer(key, body, present=True)

        error = None
        children = self._children(worker)
        pods = [p for p in self.indexes.pods.get(key) or () if is_worker_pod(p)]
        # What earlier runs published, read before this run replaces it (after a restart, the runners to retire).
        published = configmap_entries(self._child(self.indexes.configmaps, key, configmap_name(worker)))
        live = runner_entries(worker, pods, published)
        if uses_static_runners(worker):
            children.append(render_runners_configmap(worker, live))
        if restricts_origins(worker):  # before the pods that read it
            children.insert(0, render_origins_configmap(worker, registration.allowed_origins(targets)))
        # The generated token is rendered with a placeholder here: only its name and kind are compared.
        token = render_token_secret(worker, "") if worker.generates_token else None
        taken = await self._name_taken(key, worker, [*children, *([token] if token else [])])
        if taken:
            message = name_conflict_message(worker, taken)
            await self._write_status(key, body, invalid_spec_status(body, message, self._clock(), "NameConflict"))
            return
        retry = False
        if token:
            try:
                await self._ensure_token(key, worker)
            except ApiError as exc:
                error = f"Secret {worker.token_secret_name} was refused: {exc.status.message}"
                retry = True
        for desired in children:
            what = f"{desired['kind']} {desired['metadata']['name']}"
            try:
                await self._ensure(key, desired)
            except ApiError as exc:
                code = exc.status.code or 0
                error = f"{what} was refused: {exc.status.message}"
                # Conflicts, throttling and server errors may pass: retry, but say so in status meanwhile
                # (some "server errors" are the spec's, e.g. duplicate list keys, and would never pass).
                retry = retry or code in (409, 429) or code >= 500
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                # The client library could not build the object from free-form parts of the spec.
                error = f"{what} cannot be built from the spec: {exc}"
        await self._remove_unwanted(key, worker, [*children, *([token] if token else [])])

        deployment = self._child(self.indexes.deployments, key, worker.deployment_name)
        now = self._clock()
        status = compute_status(worker, deployment, pods, body.get("status"), now, error)
        reg = worker.spec.registration
        if worker.registers and reg.protocol == "live-runner":
            if reg.live_runner_mode == "dynamic":
                names = [p["metadata"]["name"] for p in pods]
                entries = await self.fleet.observe_runners(key, targets, names, status.get("orchestrators") or [], now)
                status = with_registration(
                    status, [*entries, *refused], targets, deleting=False, now=now, generation=worker.generation
                )
                # Pods register themselves a heartbeat after they change: look again soon while the
                # orchestrators' lists still differ from the ready pods, so status follows within seconds.
                ready = sum(1 for p in pods if pod_problem(p) is None)
                settling = any("lastError" not in e and e.get("runners") != ready for e in entries)
                self._schedule_refresh(
                    key, min(reg.refresh_seconds, RUNNERS_RECHECK_SECONDS) if settling else reg.refresh_seconds
                )
            else:
                entries = await self.fleet.sync_static(
                    key, worker, targets, live, published, status.get("orchestrators") or [], self._ref(body), now
                )
                status = with_registration(
                    status,
                    [*entries, *refused],
                    targets,
                    deleting=False,
                    now=now,
                    generation=worker.generation,
                    note=static_note(worker, targets),
                )
                self._schedule_refresh(key, reg.refresh_seconds)
        elif worker.registers or ((body.get("status") or {}).get("orchestrators") and not refused):
            slots = await self._placeable(key, worker)
            address = self._address(key, worker)
            entries = status.get("orchestrators") or []
            if address.url is not None:
                entries = await self.fleet.sync(
                    key,
                    worker,
                    targets,
                    slots.free if slots else 0,
                    address.url,
                    entries,
                    self._ref(body),
                    now,
                    active=slots.active if slots else 0,
                    held=self._held(key, body, targets),
                )
            status = with_registration(
                status,
                [*entries, *refused],
                targets,
                deleting=False,
                now=now,
                generation=worker.generation,
                slots=slots,
                routed=worker.uses_router,
                address=address,
            )
            # The routers' counts are polled while registered: the orchestrators' figure is only right until they
            # change (slots.py).
            self._schedule_refresh(key, min(float(reg.refresh_seconds), SLOTS_POLL_SECONDS))
        elif refused:
            # Nothing it may register with: say why.
            status = with_registration(status, refused, [], deleting=False, now=now, generation=worker.generation)
        if worker.spec.autoscaling:
            if self.autoscaler.due(key, worker.spec.autoscaling):
                await self.autoscaler.evaluate(key, worker, pods, self._ref(body))
            status.update(self.autoscaler.status_fields(key))
            self._schedule(self._autoscale_timers, key, worker.spec.autoscaling.period_seconds)
        else:
            self.autoscaler.forget(key)
        await self._write_status(key, body, status)
        if retry:
            raise RuntimeError(error)

    async def _placeable(self, key: Key, worker: Worker) -> Slots | None:
        """What this worker's routers can place now (None: no router answers)."""
        assert self.indexes is not None
        if not worker.uses_router:
            return None
        return await self.router_slots.read(router_addresses(worker, list(self.indexes.pods.get(key) or ())))

    def _targets(self, namespace: str, worker: Worker) -> tuple[list[registration.Target], list[dict[str, Any]]]:
        """The orchestrators this worker registers with, and status entries for those it may not use: named
        BYOCOrchestrators not offered to its namespace, and its own ones where the operator does not allow them."""
        assert self.indexes is not None
        orchestrators = {
            name: value
            for name in list(self.indexes.orchestrators.keys())
            if (value := first(self.indexes.orchestrators.get(name)))
        }
        labels = first(self.indexes.namespaces.get(namespace)) or {}
        admin, refused = registration.cluster_targets(worker, orchestrators, labels, self.operator_namespace)
        if self.namespace_orchestrators:
            secrets = list(self.indexes.orchestrator_secrets.get(namespace) or ())
            return registration.targets(worker, secrets, admin), refused
        own = registration.own_refusals(worker)
        return registration.targets(registration.without_own(worker), [], admin), [*own, *refused]

    def _held(self, key: Key, body: dict[str, Any], targets: list[registration.Target]) -> dict[str, Key]:
        """This worker's orchestrators where another worker holds its capability name (`claims.py`)."""
        assert self.indexes is not None
        capability = capability_of(body)
        if capability is None or not targets:
            return {}
        mine = Claim(
            str(body["metadata"].get("creationTimestamp") or ""), key, capability, frozenset(t.url for t in targets)
        )
        return holders(mine, self._claims(capability, key))

    def _claims(self, capability: str, skip: Key) -> list[Claim]:
        """Every other BYOC worker registering `capability`, with the orchestrators it registers with."""
        assert self.indexes is not None
        out = []
        for other_key in list(self.indexes.workers.keys()):
            other = first(self.indexes.workers.get(other_key))
            if other_key == skip or other is None or capability_of(other) != capability:
                continue
            try:
                worker = Worker.from_body(other, self.runtime_image, edge_image=self.edge_image)
            except pydantic.ValidationError:
                continue
            if not worker.registers:
                continue
            urls = frozenset(t.url for t in self._targets(other_key[0], worker)[0])
            out.append(Claim(str(other["metadata"].get("creationTimestamp") or ""), other_key, capability, urls))
        return out

    def _address(self, key: Key, worker: Worker) -> Address:
        assert self.indexes is not None
        return advertised_address(worker, self._child(self.indexes.services, key, worker.router_name))

    def _children(self, worker: Worker) -> list[dict[str, Any]]:
        children = [render_deployment(worker), render_service(worker)]
        if worker.uses_router:
            children += [render_pods_service(worker), render_router_deployment(worker), render_router_service(worker)]
        budget = render_disruption_budget(worker)
        children += [*([budget] if budget else []), *render_network_policies(worker)]
        return children

    async def _name_taken(self, key: Key, worker: Worker, children: list[dict[str, Any]]) -> str | None:
        """The first child ("Kind name") whose name an object this worker does not own holds. Server-side apply
        would take such an object over (and the garbage collector delete it with the worker), so nothing is
        written. Objects outside the index (not labelled as this worker's) are looked up before their creation."""
        assert self.indexes is not None
        for desired in children:
            kind, name = desired["kind"], desired["metadata"]["name"]
            live = self._child(self.indexes.of_kind(kind), key, name)
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

    async def _ensure_token(self, key: Key, worker: Worker) -> None:
        """Create the generated worker token once. Created, never applied: the token is random, and rewriting it
        would rotate it on every run."""
        assert self.indexes is not None
        name = worker.token_secret_name
        ref = ("Secret", key[0], name)
        applied = self._applied.get(ref)
        if self._child(self.indexes.token_secrets, key, name) is not None or (
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

    async def _remove_unwanted(self, key: Key, worker: Worker, children: list[dict[str, Any]]) -> None:
        """Delete children the spec no longer asks for (the router once BYOC is off, a dropped budget...)."""
        assert self.indexes is not None
        wanted = {(c["kind"], c["metadata"]["name"]) for c in children}
        for resource, name in optional_children(worker):
            kind = resource.__name__
            live = self._child(self.indexes.of_kind(kind), key, name)
            if (kind, name) in wanted or live is None or not owned_by(live, worker.uid):
                continue
            with contextlib.suppress(ApiError):
                await self.client.delete(resource, name, namespace=key[0])
                metrics.API_WRITES.labels("delete", kind).inc()

    async def _unregister_all(
        self, key: Key, worker: Worker, body: dict[str, Any], targets: list[registration.Target]
    ) -> None:
        """Leave every orchestrator before the worker goes, then let it go."""
        if registration.FINALIZER not in (body["metadata"].get("finalizers") or []):
            return
        if not (worker.uses_router or self._retires_runners(worker, targets)):
            await self._set_finalizer(key, body, present=False)
            return
        previous = (body.get("status") or {}).get("orchestrators") or []
        if worker.uses_router:
            # Children outlive the worker's finalizer (background deletion), so streams still running go on:
            # keep the capability registered with no free slot until they end or the drain grace is over, so
            # their params and stop calls still reach them (go-livepeer forgets the URL on unregister).
            slots = await self._placeable(key, worker)
            address = self._address(key, worker)
            if slots is not None and slots.active and address.url and not self._grace_over(body, worker):
                entries = await self.fleet.sync(
                    key,
                    worker,
                    targets,
                    0,
                    address.url,
                    previous,
                    self._ref(body),
                    self._clock(),
                    active=slots.active,
                    held=self._held(key, body, targets),
                )
                status = with_registration(
                    body.get("status") or {},
                    entries,
                    targets,
                    deleting=True,
                    now=self._clock(),
                    generation=worker.generation,
                    slots=slots,
                    routed=True,
                )
                await self._write_status(key, body, status)
                self._schedule_refresh(key, SLOTS_POLL_SECONDS)
                return
            entries = await self.fleet.sync(
                key,
                worker,
                targets,
                0,
                "",
                previous,
                self._ref(body),
                self._clock(),
                deleting=True,
                held=self._held(key, body, targets),
            )
        else:
            assert self.indexes is not None
            published = configmap_entries(self._child(self.indexes.configmaps, key, configmap_name(worker)))
            entries = await self.fleet.sync_static(
                key, worker, targets, [], published, previous, self._ref(body), self._clock(), deleting=True
            )
        failed = [e for e in entries if e.get("lastError")]
        if failed:
            attempts = self._retries.get(key, 0)
            if attempts < UNREGISTER_ATTEMPTS:
                raise RuntimeError(f"unregistering failed: {failed[0]['url']}: {failed[0]['lastError']}")
            self._post_event(
                self._ref(body),
                "Warning",
                "UnregisterFailed",
                f"gave up unregistering from {len(failed)} orchestrator(s) after {attempts} attempts",
            )
        await self._set_finalizer(key, body, present=False)

    def _grace_over(self, body: dict[str, Any], worker: Worker) -> bool:
        """Whether a deleted worker's streams have had their drain grace (then it unregisters regardless)."""
        stamp = body["metadata"].get("deletionTimestamp")
        try:
            since = datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
            now = datetime.datetime.fromisoformat(self._clock().replace("Z", "+00:00"))
        except ValueError:
            return True
        return (now - since).total_seconds() >= worker.spec.drain.grace_period_seconds

    @staticmethod
    def _retires_runners(worker: Worker, targets: list[registration.Target]) -> bool:
        """Static Live Runner entries are never removed upstream: a deleted worker's are retired first."""
        return uses_static_runners(worker) and any(t.cli_url for t in targets)

    async def _set_finalizer(self, key: Key, body: dict[str, Any], present: bool) -> None:
        finalizers = list(body["metadata"].get("finalizers") or [])
        if (registration.FINALIZER in finalizers) == present:
            return
        finalizers = (
            [*finalizers, registration.FINALIZER] if present else [f for f in finalizers if f != registration.FINALIZER]
        )
        await self.client.patch(
            BYOCWorkerResource,
            key[1],
            {"metadata": {"finalizers": finalizers}},
            namespace=key[0],
            patch_type=PatchType.MERGE,
        )
        metrics.API_WRITES.labels("patch", api.KIND).inc()

    def _schedule_refresh(self, key: Key, seconds: float) -> None:
        """Orchestrators never health-check: re-register every refresh period even if nothing changed."""
        self._schedule(self._refresh, key, seconds)

    def _schedule(self, timers: dict[Key, asyncio.TimerHandle], key: Key, seconds: float) -> None:
        """One pending wake-up per worker and purpose, replaced by each run."""
        handle = timers.pop(key, None)
        if handle:
            handle.cancel()
        timers[key] = asyncio.get_running_loop().call_later(seconds, self.trigger, key)

    @staticmethod
    def _ref(body: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": f"{api.GROUP}/{api.VERSION}",
            "kind": api.KIND,
            "metadata": {k: body["metadata"][k] for k in ("name", "namespace", "uid")},
        }

    def _child(self, index: Any, key: Key, name: str) -> dict[str, Any] | None:
        for obj in index.get(key) or ():
            if obj["metadata"]["name"] == name:
                return obj
        return None

    async def _ensure(self, key: Key, desired: dict[str, Any]) -> None:
        """Server-side apply the child if the live one is missing or differs from what we render."""
        assert self.indexes is not None
        kind, name = desired["kind"], desired["metadata"]["name"]
        want = digest(desired)
        desired = stamped(desired, want)
        live = self._child(self.indexes.of_kind(kind), key, name)
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

    async def _write_status(self, key: Key, body: dict[str, Any], status: dict[str, Any]) -> None:
        current = body.get("status") or {}
        if current == status or self._written_status.get(key) == status:
            return
        # A merge patch keeps fields it does not name: a field the new status dropped is sent as null.
        dropped = {field: None for field in current if field not in status}
        await self.client.patch(
            BYOCWorkerResource.Status,
            key[1],
            {"status": {**status, **dropped}},
            namespace=key[0],
            patch_type=PatchType.MERGE,
        )
        metrics.API_WRITES.labels("patch-status", api.KIND).inc()
        self._written_status[key] = status
        for type_, reason, message in transitions(current, status):
            self._post_event(self._ref(body), type_, reason, message)
