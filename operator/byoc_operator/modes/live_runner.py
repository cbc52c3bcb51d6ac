"""Live Runner registration (go-livepeer v0.9+), both ways.

- Dynamic: each pod's registrar sidecar heartbeats to the orchestrators and unregisters itself when it drains; the
  operator only reads each orchestrator's public /discovery to report how many of the worker's pods it routes to.
- Static: the operator upserts the ready pods' runners.json entries to each orchestrator's CLI port (and retires
  gone ones, `static_runners.py`); orchestrators without a CLI URL read the ConfigMap at start only.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from byoc_operator import api, registration, static_runners
from byoc_operator.index import Key
from byoc_operator.modes import Leaving, Registered, Round
from byoc_operator.orchestrator import OrchestratorAccess, RegistrationError, upsert_runners
from byoc_operator.render.runners import uses_static_runners
from byoc_operator.render.worker import Worker
from byoc_operator.static_runners import static_note
from byoc_operator.status import pod_problem

EventPoster = Callable[[dict[str, Any], str, str, str], None]

# Dynamic: how soon to re-read /discovery while it does not match the ready pods yet (upstream's heartbeat
# interval is 5 s).
RUNNERS_RECHECK_SECONDS = 5.0


class DynamicRunners:
    def __init__(self, access: OrchestratorAccess) -> None:
        self._access = access

    async def close(self) -> None:
        return None

    def forget(self, key: Key) -> None:
        return None  # nothing is remembered: every round reads /discovery again

    def holds_finalizer(self, worker: Worker, targets: list[registration.Target]) -> bool:
        return False  # the pods unregister themselves

    async def unregister(self, round_: Round, grace_over: bool) -> Leaving:
        return Leaving([])

    async def register(self, round_: Round) -> Registered:
        """Report how many of this worker's pods each orchestrator routes to (dynamic runner routes are the runner
        ids, which the registrar sets to the pod names)."""
        names = [p["metadata"]["name"] for p in round_.pods]
        old = {e.url: e for e in round_.previous}
        entries = []
        for target in round_.targets:
            entry = old.get(target.url) or api.OrchestratorStatus(url=target.url)
            try:
                listed = await self._access.discovery(round_.key[0], target)
            except RegistrationError as exc:
                entry = entry.model_copy(update={"last_error": str(exc)})
            else:
                ours = registration.our_runners(listed, names)
                registered = bool(ours)
                since = (entry.since if entry.registered else round_.now) if registered else None
                capacity = sum(r.get("capacity", 0) for r in ours)
                entry = entry.model_copy(
                    update={
                        "registered": registered,
                        "capacity": capacity,
                        "runners": len(ours),
                        "last_error": None,
                        "since": since,
                    }
                )
            entries.append(entry)
        # Pods register themselves a heartbeat after they change: look again soon while the orchestrators' lists
        # still differ from the ready pods, so status follows within seconds.
        ready = sum(1 for p in round_.pods if pod_problem(p) is None)
        settling = any(e.last_error is None and e.runners != ready for e in entries)
        refresh = float(round_.worker.spec.registration.refresh_seconds)
        return Registered(entries, min(refresh, RUNNERS_RECHECK_SECONDS) if settling else refresh)


class StaticRunners:
    def __init__(self, access: OrchestratorAccess, post_event: EventPoster) -> None:
        self._access = access
        self._post_event = post_event
        self._known: dict[tuple[Key, str], registration.Target] = {}
        self._upserted: dict[tuple[Key, str], static_runners.Upserted] = {}

    async def close(self) -> None:
        return None

    def forget(self, key: Key) -> None:
        for mem_key in [k for k in [*self._upserted, *self._known] if k[0] == key]:
            self._upserted.pop(mem_key, None)
            self._known.pop(mem_key, None)

    def holds_finalizer(self, worker: Worker, targets: list[registration.Target]) -> bool:
        """Static Live Runner entries are never removed upstream: a deleted worker's are retired first."""
        return uses_static_runners(worker) and any(t.cli_url for t in targets)

    async def register(self, round_: Round) -> Registered:
        entries = await self._sync(round_, deleting=False)
        note = static_note(round_.worker, round_.targets)
        return Registered(entries, float(round_.worker.spec.registration.refresh_seconds), note=note)

    async def unregister(self, round_: Round, grace_over: bool) -> Leaving:
        # Every runner upserted is retired; the entries returned are the orchestrators that failed.
        return Leaving(await self._sync(dataclasses.replace(round_, live=[]), deleting=True))

    async def _sync(self, round_: Round, deleting: bool) -> list[api.OrchestratorStatus]:
        """Upsert the ready pods' runners.json entries (and retire gone ones) to every orchestrator with a CLI URL,
        when they change and every refresh period; report what each orchestrator's /discovery lists."""
        key, targets = round_.key, round_.targets
        old = {e.url: e for e in round_.previous}
        labels = {e["label"] for e in round_.live}
        entries = []
        wanted = {t.url for t in targets}
        gone = [self._known.get((key, url)) for url in old if url not in wanted]
        for target in targets:
            self._known[(key, target.url)] = target
        for target in [*targets, *(t for t in gone if t)]:
            mem_key = (key, target.url)
            keep = target.url in wanted and not deleting
            if target.cli_url:
                await self._upsert(round_, mem_key, target, round_.live if keep else [])
            if not keep:
                # Removed from the spec, or the worker is going: its runners were retired there; a failure stays
                # in the status so it is retried (and, deleting, holds the finalizer).
                failed = self._upserted.get(mem_key)
                if failed is not None and failed.error:
                    entries.append(api.OrchestratorStatus(url=target.url, last_error=failed.error))
                elif not deleting:
                    self._upserted.pop(mem_key, None)
                    self._known.pop(mem_key, None)
                continue
            try:
                found = static_runners.our_runners(await self._access.discovery(key[0], target), labels)
            except RegistrationError:
                found = None  # the HTTP port may not be reachable from here; the upsert reply tells enough
            memory = self._upserted.get(mem_key)
            per_pod = round_.worker.spec.sessions_per_pod
            entries.append(
                static_runners.status_entry(target.url, labels, memory, found, per_pod, old.get(target.url), round_.now)
            )
        if deleting or not targets:
            self.forget(key)
        return entries

    async def _upsert(
        self, round_: Round, mem_key: tuple[Key, str], target: registration.Target, live: list[dict[str, Any]]
    ) -> None:
        assert target.cli_url is not None
        memory = self._upserted.get(mem_key)
        document = static_runners.upsert_document(live, static_runners.known_entries(memory, round_.published))
        if not document["runners"]:
            return  # nothing ready and nothing to retire
        digest = static_runners.document_digest(document)
        now = time.monotonic()
        if not static_runners.due(digest, memory, now, float(round_.worker.spec.registration.refresh_seconds)):
            return
        ref = round_.ref
        try:
            tls = await self._access.tls(round_.key[0], target)
            reply = await upsert_runners(self._access.http(), target.cli_url, document, tls)
        except RegistrationError as exc:
            if not memory or memory.error != str(exc):
                self._post_event(ref, "Warning", "RegistrationFailed", f"{target.cli_url}: {exc}")
            self._upserted[mem_key] = dataclasses.replace(
                memory or static_runners.Upserted(None, now), at=now, error=str(exc)
            )
            return
        healthy = frozenset(str(r.get("label")) for r in reply if r.get("healthy"))
        self._upserted[mem_key] = static_runners.Upserted(digest, now, {e["label"]: e for e in live}, healthy)
        retired = len(document["runners"]) - len(live)
        if memory is None or memory.digest is None or memory.error or retired:
            message = f"upserted {len(live)} runner(s) to {target.cli_url}"
            message += f", retired {retired}" if retired else ""
            self._post_event(ref, "Normal", "Registered", message)
