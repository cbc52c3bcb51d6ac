"""The reconcile loop: read the worker and its children from memory, render, apply what differs, write status.

Level-based: each run recomputes the desired state from the BYOCWorker and what the cluster shows, whatever
event woke it. Runs for one worker are serialised and coalesced (a burst of pod events is one run), and a run
with nothing changed makes no API request at all.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import kopf
import pydantic
from lightkube import ApiError, AsyncClient, codecs
from lightkube.generic_resource import create_namespaced_resource
from lightkube.types import PatchType

from byoc_operator import api
from byoc_operator.drift import contains
from byoc_operator.index import Key, first
from byoc_operator.render import Worker, render_deployment, render_service
from byoc_operator.render.worker import FIELD_MANAGER
from byoc_operator.status import compute_status, invalid_spec_status, transitions

log = logging.getLogger(__name__)

BYOCWorkerResource = create_namespaced_resource(api.GROUP, api.VERSION, api.KIND, api.PLURAL)

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


@dataclass
class Stats:
    """API requests made, by verb: the benchmark and the idle-resync test read these."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, verb: str) -> None:
        self.counts[verb] = self.counts.get(verb, 0) + 1


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
    ) -> None:
        self.client = client
        self.runtime_image = runtime_image
        self.indexes: Indexes | None = None
        self.stats = Stats()
        self._post_event = post_event
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._dirty: set[Key] = set()
        self._running: dict[Key, asyncio.Task[None]] = {}
        self._retries: dict[Key, int] = {}
        self._applied: dict[tuple[str, str, str], Applied] = {}
        self._written_status: dict[Key, dict[str, Any]] = {}

    async def close(self) -> None:
        """Stop queued and running reconciles, then the client (operator shutdown)."""
        self._dirty.clear()
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
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
                        await self.reconcile(key)
                        self._retries.pop(key, None)
                    except Exception as exc:  # one bad object must never stop the others
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
        if body is None or body["metadata"].get("deletionTimestamp"):
            self._written_status.pop(key, None)
            return  # gone: ownerReferences let the garbage collector remove the children
        try:
            worker = Worker.from_body(body, self.runtime_image)
        except pydantic.ValidationError as exc:
            # The API server's schema should have refused this; report it rather than crash.
            await self._write_status(key, body, invalid_spec_status(body, spec_error_message(exc), self._clock()))
            return

        error = None
        for desired in (render_deployment(worker), render_service(worker)):
            try:
                await self._ensure(key, desired)
            except ApiError as exc:
                if exc.status.code is not None and 400 <= exc.status.code < 500 and exc.status.code != 409:
                    error = f"{desired['kind']} {desired['metadata']['name']} was refused: {exc.status.message}"
                else:
                    raise

        deployment = self._child(self.indexes.deployments, key, worker.deployment_name)
        pods = list(self.indexes.pods.get(key) or ())
        status = compute_status(worker, deployment, pods, body.get("status"), self._clock(), error)
        await self._write_status(key, body, status)

    def _child(self, index: Any, key: Key, name: str) -> dict[str, Any] | None:
        for obj in index.get(key) or ():
            if obj["metadata"]["name"] == name:
                return obj
        return None

    async def _ensure(self, key: Key, desired: dict[str, Any]) -> None:
        """Server-side apply the child if the live one is missing or differs from what we render."""
        assert self.indexes is not None
        kind, name = desired["kind"], desired["metadata"]["name"]
        index = self.indexes.deployments if kind == "Deployment" else self.indexes.services
        live = self._child(index, key, name)
        ref = (kind, key[0], name)
        if live is not None and contains(live, desired):
            self._applied.pop(ref, None)
            return
        want = digest(desired)
        applied = self._applied.get(ref)
        if applied and applied.digest == want:
            if live is None and time.monotonic() - applied.at < APPLY_SETTLE_SECONDS:
                return  # we just created it; the index has not caught up yet
            if live is not None and revision(live) == applied.revision:
                # Nobody changed it since we applied this very spec: what differs is the API server's
                # normalisation (dropped unknown fields, canonical quantities), not drift.
                return
        log.info("applying %s %s/%s (%s)", kind, key[0], name, "create" if live is None else "drift or change")
        self.stats.add("apply")
        result = await self.client.apply(codecs.from_dict(desired), field_manager=FIELD_MANAGER, force=True)
        self._applied[ref] = Applied(want, revision(result.to_dict()), time.monotonic())

    async def _write_status(self, key: Key, body: dict[str, Any], status: dict[str, Any]) -> None:
        current = body.get("status") or {}
        if current == status or self._written_status.get(key) == status:
            return
        self.stats.add("patch-status")
        await self.client.patch(
            BYOCWorkerResource.Status,
            key[1],
            {"status": status},
            namespace=key[0],
            patch_type=PatchType.MERGE,
        )
        self._written_status[key] = status
        ref = {
            "apiVersion": f"{api.GROUP}/{api.VERSION}",
            "kind": api.KIND,
            "metadata": {k: body["metadata"][k] for k in ("name", "namespace", "uid")},
        }
        for type_, reason, message in transitions(current, status):
            self._post_event(ref, type_, reason, message)
