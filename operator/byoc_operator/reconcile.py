"""The reconcile loop: read the worker and its children from memory, render, apply what differs, write status.

Level-based: each run recomputes the desired state from the BYOCWorker and what the cluster shows, whatever
event woke it. Runs for one worker are serialised and coalesced (`work_queue.py`: a burst of pod events is one
run), and a run with nothing changed makes no API request at all. Children are written by `children.py`; how the
worker is announced to orchestrators is its registration mode's (`modes/`).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import kopf
import pydantic
from lightkube import ApiError, AsyncClient
from lightkube.generic_resource import create_namespaced_resource
from lightkube.types import PatchType

from byoc_operator import api, metrics, registration
from byoc_operator.autoscale import Autoscaler
from byoc_operator.children import Children, name_conflict_message
from byoc_operator.claims import capability_of
from byoc_operator.config import OperatorConfig
from byoc_operator.index import Indexes, Key, child, first
from byoc_operator.modes import RegistrationStrategy, Round
from byoc_operator.modes.byoc import ByocRegistration
from byoc_operator.modes.live_runner import DynamicRunners, StaticRunners
from byoc_operator.orchestrator import OrchestratorAccess
from byoc_operator.pod_policy import refusal as policy_refusal
from byoc_operator.render import Worker, render_deployment, render_service
from byoc_operator.render.deployment import node_refusal
from byoc_operator.render.network import render_network_policies
from byoc_operator.render.origins import render_origins_configmap, restricts_origins
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
from byoc_operator.status import (
    compute_status,
    invalid_spec_status,
    is_worker_pod,
    orchestrator_entries,
    transitions,
    with_registration,
    with_transport,
)
from byoc_operator.targets import held_by_others, targets_of
from byoc_operator.work_queue import WorkQueue

BYOCWorkerResource = create_namespaced_resource(api.GROUP, api.VERSION, api.KIND, api.PLURAL)

# Deleting a worker waits this many failed attempts to leave its orchestrators before giving up.
UNREGISTER_ATTEMPTS = 5


def utcnow() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def spec_error_message(error: pydantic.ValidationError) -> str:
    parts = []
    for e in error.errors(include_url=False):
        where = ".".join(str(p) for p in ("spec", *e["loc"]))
        parts.append(f"{where}: {e['msg']}")
    return "invalid spec: " + "; ".join(parts)


EventPoster = Callable[[dict[str, Any], str, str, str], None]


def post_kopf_event(body: dict[str, Any], type_: str, reason: str, message: str) -> None:
    # kopf types `body` as its own Body; an object reference as a plain dict is what it posts Events about.
    kopf.event(body, type=type_, reason=reason, message=message)  # type: ignore[arg-type]


def children_of(worker: Worker) -> list[dict[str, Any]]:
    """The children this spec asks for, but the runners ConfigMap and the origins one (they need the cluster)."""
    children = [render_deployment(worker), render_service(worker)]
    if worker.uses_router:
        children += [render_pods_service(worker), render_router_deployment(worker), render_router_service(worker)]
    budget = render_disruption_budget(worker)
    return [*children, *([budget] if budget else []), *render_network_policies(worker)]


def object_ref(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{api.GROUP}/{api.VERSION}",
        "kind": api.KIND,
        "metadata": {k: body["metadata"][k] for k in ("name", "namespace", "uid")},
    }


class Reconciler:
    def __init__(
        self,
        client: AsyncClient,
        config: OperatorConfig,
        *,
        post_event: EventPoster = post_kopf_event,
        clock: Callable[[], str] = utcnow,
    ) -> None:
        self.client = client
        self.config = config
        self.indexes: Indexes | None = None
        self._children: Children | None = None
        self._post_event = post_event
        self._clock = clock
        self._queue = WorkQueue(self.reconcile, config.reconcile_concurrency)
        self._written_status: dict[Key, dict[str, Any]] = {}
        self._access = OrchestratorAccess(client)
        self.modes: dict[api.RegistrationMode, RegistrationStrategy] = {
            api.RegistrationMode.BYOC: ByocRegistration(self._access, post_event, config.token_propagation_seconds),
            api.RegistrationMode.LIVE_RUNNER_DYNAMIC: DynamicRunners(self._access),
            api.RegistrationMode.LIVE_RUNNER_STATIC: StaticRunners(self._access, post_event),
        }
        self.autoscaler = Autoscaler(client, BYOCWorkerResource, post_event, clock)

    async def close(self) -> None:
        """Stop queued and running reconciles, then the client (operator shutdown)."""
        await self._queue.close()
        for mode in self.modes.values():
            await mode.close()
        await self._access.close()
        await self.autoscaler.close()
        await self.client.close()

    def bind(self, indexes: Indexes) -> None:
        self.indexes = indexes
        self._children = Children(self.client, indexes)

    # -- scheduling -------------------------------------------------------------------------------------------

    def trigger(self, key: Key) -> None:
        """Ask for a reconcile of this worker soon; many triggers before it runs make one run."""
        self._queue.trigger(key)

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
        await self._queue.idle()

    # -- one run ----------------------------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        if self.indexes is None or self._children is None:
            raise RuntimeError("indexes not bound yet")
        body = first(self.indexes.workers.get(key))
        if body is None:
            self._written_status.pop(key, None)
            for mode in self.modes.values():
                mode.forget(key)
            self.autoscaler.forget(key)
            return  # gone: ownerReferences let the garbage collector remove the children
        deleting = bool(body["metadata"].get("deletionTimestamp"))
        policy = self.config.policy
        try:
            worker = Worker.from_body(body, self.config.runtime_image, policy, self.config.edge_image)
        except pydantic.ValidationError as exc:
            if deleting:
                await self._set_finalizer(key, body, present=False)
                return
            # The API server's schema should have refused this; report it rather than crash.
            await self._write_status(key, body, invalid_spec_status(body, spec_error_message(exc), self._clock()))
            return
        refusal = None if deleting else node_refusal(worker) or policy_refusal(worker.spec, policy)
        if refusal:
            await self._write_status(key, body, invalid_spec_status(body, f"invalid spec: {refusal}", self._clock()))
            return
        targets, refused = targets_of(self.indexes, self.config, key[0], worker)
        if not self.config.allow_namespace_orchestrators:
            worker = registration.without_own(worker)  # nor rendered (a registrar mounting the namespace's Secret)
        mode = self.modes[worker.mode]
        if deleting:
            await self._unregister_all(key, worker, body, targets)
            return
        # BYOC registrations and static runners are the operator's to remove; dynamic pods unregister themselves.
        if mode.holds_finalizer(worker, targets):
            await self._set_finalizer(key, body, present=True)

        error = None
        children = children_of(worker)
        pods = [p for p in self.indexes.pods.get(key) or () if is_worker_pod(p)]
        # What earlier runs published, read before this run replaces it (after a restart, the runners to retire).
        published = configmap_entries(child(self.indexes.configmaps, key, configmap_name(worker)))
        live = runner_entries(worker, pods, published)
        if uses_static_runners(worker):
            children.append(render_runners_configmap(worker, live))
        if restricts_origins(worker):  # before the pods that read it
            children.insert(0, render_origins_configmap(worker, registration.allowed_origins(targets)))
        # The generated token is rendered with a placeholder here: only its name and kind are compared.
        token = render_token_secret(worker, "") if worker.generates_token else None
        owned = [*children, *([token] if token else [])]
        taken = await self._children.name_taken(key, worker, owned)
        if taken:
            message = name_conflict_message(worker, taken)
            await self._write_status(key, body, invalid_spec_status(body, message, self._clock(), "NameConflict"))
            return
        retry = False
        if token:
            try:
                await self._children.ensure_token(key, worker)
            except ApiError as exc:
                error = f"Secret {worker.token_secret_name} was refused: {exc.status.message}"
                retry = True
        for desired in children:
            what = f"{desired['kind']} {desired['metadata']['name']}"
            try:
                await self._children.ensure(key, desired)
            except ApiError as exc:
                code = exc.status.code or 0
                error = f"{what} was refused: {exc.status.message}"
                # Conflicts, throttling and server errors may pass: retry, but say so in status meanwhile
                # (some "server errors" are the spec's, e.g. duplicate list keys, and would never pass).
                retry = retry or code in (409, 429) or code >= 500
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                # The client library could not build the object from free-form parts of the spec.
                error = f"{what} cannot be built from the spec: {exc}"
        await self._children.remove_unwanted(key, worker, owned)

        deployment = child(self.indexes.deployments, key, worker.deployment_name)
        now = self._clock()
        status = compute_status(worker, deployment, pods, body.get("status"), now, error)
        status = with_transport(status, targets, worker.generation, now)
        previous = orchestrator_entries(body.get("status"))
        if worker.registers or (previous and not refused):
            # Orchestrators to register with, or ones it registered with before that are no longer named.
            round_ = self._round(key, worker, body, targets, now, pods=pods, live=live, published=published)
            outcome = await mode.register(round_)
            status = with_registration(
                status,
                [*outcome.entries, *refused],
                targets,
                deleting=False,
                now=now,
                generation=worker.generation,
                note=outcome.note,
                slots=outcome.slots,
                routed=outcome.routed,
                address=outcome.address,
            )
            self._queue.later("refresh", key, outcome.refresh_seconds)
        elif refused:
            # Nothing it may register with: say why.
            status = with_registration(status, refused, [], deleting=False, now=now, generation=worker.generation)
        if worker.spec.autoscaling:
            if self.autoscaler.due(key, worker.spec.autoscaling):
                await self.autoscaler.evaluate(key, worker, pods, object_ref(body))
            status.update(self.autoscaler.status_fields(key))
            self._queue.later("autoscale", key, worker.spec.autoscaling.period_seconds)
        else:
            self.autoscaler.forget(key)
        await self._write_status(key, body, status)
        if retry:
            raise RuntimeError(error)

    def _round(
        self,
        key: Key,
        worker: Worker,
        body: dict[str, Any],
        targets: list[registration.Target],
        now: str,
        *,
        pods: list[dict[str, Any]] | None = None,
        live: list[dict[str, Any]] | None = None,
        published: list[dict[str, Any]] | None = None,
    ) -> Round:
        indexes = self.indexes
        assert indexes is not None
        return Round(
            key=key,
            worker=worker,
            ref=object_ref(body),
            targets=targets,
            previous=orchestrator_entries(body.get("status")),
            now=now,
            pods=pods or [],
            router_service=child(indexes.services, key, worker.router_name),
            router_pods=list(indexes.pods.get(key) or ()),
            held=lambda: held_by_others(indexes, self.config, key, body, targets),
            live=live or [],
            published=published or [],
        )

    async def _unregister_all(
        self, key: Key, worker: Worker, body: dict[str, Any], targets: list[registration.Target]
    ) -> None:
        """Leave every orchestrator before the worker goes, then let it go."""
        assert self.indexes is not None
        if registration.FINALIZER not in (body["metadata"].get("finalizers") or []):
            return
        mode = self.modes[worker.mode]
        if not mode.holds_finalizer(worker, targets):
            await self._set_finalizer(key, body, present=False)
            return
        published = configmap_entries(child(self.indexes.configmaps, key, configmap_name(worker)))
        round_ = self._round(key, worker, body, targets, self._clock(), published=published)
        leaving = await mode.unregister(round_, self._grace_over(body, worker))
        if leaving.waiting is not None:
            waiting = leaving.waiting
            status = with_registration(
                body.get("status") or {},
                waiting.entries,
                targets,
                deleting=True,
                now=self._clock(),
                generation=worker.generation,
                slots=waiting.slots,
                routed=waiting.routed,
            )
            await self._write_status(key, body, status)
            self._queue.later("refresh", key, waiting.refresh_seconds)
            return
        if leaving.failed:
            attempts = self._queue.failures(key)
            if attempts < UNREGISTER_ATTEMPTS:
                first_failed = leaving.failed[0]
                raise RuntimeError(f"unregistering failed: {first_failed.url}: {first_failed.last_error}")
            self._post_event(
                object_ref(body),
                "Warning",
                "UnregisterFailed",
                f"gave up unregistering from {len(leaving.failed)} orchestrator(s) after {attempts} attempts",
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
            self._post_event(object_ref(body), type_, reason, message)
