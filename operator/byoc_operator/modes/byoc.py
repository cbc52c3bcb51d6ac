"""BYOC capability registration: the router's URL registered with each orchestrator, refreshed, and removed.

The orchestrator secret goes only into the Authorization header and the worker token only into the registration
body (`orchestrator.py`); the token is read from its Secret for each call and kept in memory only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from byoc_operator import api, registration
from byoc_operator.advertise import advertised_address
from byoc_operator.index import Key
from byoc_operator.modes import Leaving, Registered, Round
from byoc_operator.orchestrator import OrchestratorAccess, RegistrationError, register, unregister
from byoc_operator.render.worker import Worker
from byoc_operator.slots import POLL_SECONDS as SLOTS_POLL_SECONDS
from byoc_operator.slots import RouterSlots, Slots, router_addresses

EventPoster = Callable[[dict[str, Any], str, str, str], None]


class ByocRegistration:
    def __init__(
        self,
        access: OrchestratorAccess,
        post_event: EventPoster,
        token_propagation_seconds: float = registration.TOKEN_PROPAGATION_SECONDS,
    ) -> None:
        self._access = access
        self._post_event = post_event
        self._token_delay = token_propagation_seconds
        self._router_slots = RouterSlots()
        self._memory: dict[tuple[Key, str], registration.Memory] = {}
        self._known: dict[tuple[Key, str], registration.Target] = {}
        self._tokens: dict[Key, registration.SentToken] = {}  # in memory only, like every secret here

    async def close(self) -> None:
        await self._router_slots.close()

    def forget(self, key: Key) -> None:
        self._tokens.pop(key, None)
        for mem_key in [k for k in self._memory if k[0] == key]:
            self._memory.pop(mem_key, None)
            self._known.pop(mem_key, None)

    def holds_finalizer(self, worker: Worker, targets: list[registration.Target]) -> bool:
        return worker.uses_router

    async def register(self, round_: Round) -> Registered:
        slots = await self._placeable(round_)
        address = advertised_address(round_.worker, round_.router_service)
        entries = round_.previous
        if address.url is not None:
            entries = await self._sync(
                round_, slots.free if slots else 0, address.url, active=slots.active if slots else 0
            )
        # The routers' counts are polled while registered: the orchestrators' figure is only right until they
        # change (slots.py).
        refresh = min(float(round_.worker.spec.registration.refresh_seconds), SLOTS_POLL_SECONDS)
        return Registered(entries, refresh, slots=slots, routed=round_.worker.uses_router, address=address)

    async def unregister(self, round_: Round, grace_over: bool) -> Leaving:
        # Children outlive the worker's finalizer (background deletion), so streams still running go on: keep the
        # capability registered with no free slot until they end or the drain grace is over, so their params and
        # stop calls still reach them (go-livepeer forgets the URL on unregister).
        slots = await self._placeable(round_)
        address = advertised_address(round_.worker, round_.router_service)
        if slots is not None and slots.active and address.url and not grace_over:
            entries = await self._sync(round_, 0, address.url, active=slots.active)
            return Leaving([], Registered(entries, SLOTS_POLL_SECONDS, slots=slots, routed=True))
        entries = await self._sync(round_, 0, "", deleting=True)
        return Leaving([e for e in entries if e.last_error])

    async def _placeable(self, round_: Round) -> Slots | None:
        """What this worker's routers can place now (None: no router answers)."""
        if not round_.worker.uses_router:
            return None
        return await self._router_slots.read(router_addresses(round_.worker, round_.router_pods))

    async def _sync(
        self, round_: Round, capacity: int, url: str, *, active: int = 0, deleting: bool = False
    ) -> list[api.OrchestratorStatus]:
        """Make every orchestrator's view match: registered with `capacity` free slots (0 included: a
        capability stays registered while streams may run on it, or their params and stop calls would go
        nowhere), or, `deleting` or gone from the spec, unregistered. `active` is the streams running when
        `capacity` was measured: when it changes the orchestrator's count has drifted (slots.py), so that too
        registers again. Orchestrators the round's `held` names (URL -> worker, `claims.py`) hold this capability
        for another worker: no call at all goes there, neither register nor unregister. Returns the
        per-orchestrator status entries (deleting: those whose unregister failed)."""
        key, worker, targets = round_.key, round_.worker, round_.targets
        payload = registration.capability_payload(worker, capacity, url)
        digest = registration.payload_digest({**payload, "active": active})
        old = {e.url: e for e in round_.previous}
        held = round_.held()
        entries = []
        wanted = {t.url for t in targets}
        gone = [self._known.get((key, url)) for url in old if url not in wanted]
        for target in [*targets, *(t for t in gone if t)]:
            holder = held.get(target.url)
            if holder is not None:
                # Whatever this worker did there before, the registration is the holder's now.
                self._memory.pop((key, target.url), None)
                self._known.pop((key, target.url), None)
                if not deleting:
                    entries.append(api.OrchestratorStatus(url=target.url, held_by="/".join(holder)))
                continue
            keep = target.url in wanted and not deleting
            self._known[(key, target.url)] = target
            entry = await self._sync_one(round_, target, payload, digest, keep, old.get(target.url))
            if keep or entry.last_error:
                # A failed unregister stays in the status, so it is retried (and, deleting, holds the finalizer).
                entries.append(entry)
        if deleting or not targets:
            self.forget(key)
        return entries

    async def _sync_one(
        self,
        round_: Round,
        target: registration.Target,
        payload: dict[str, Any],
        digest: str,
        want: bool,
        old: api.OrchestratorStatus | None,
    ) -> api.OrchestratorStatus:
        # The operator's memory of its own calls is the truth here, not the status it read back (which may lag
        # a write it just made); the status only seeds `since` after an operator restart.
        key, ref = round_.key, round_.ref
        mem_key = (key, target.url)
        memory = self._memory.get(mem_key)
        refresh = float(round_.worker.spec.registration.refresh_seconds)
        action = registration.plan(want, digest, memory, time.monotonic(), refresh)
        if action == "keep" and memory is not None:
            return memory.entry(target.url)
        was_registered = bool(memory and memory.digest is not None)
        try:
            secret, tls = await self._access.credentials(key[0], target)
            if action == "register":
                sent = await self._with_token(key, payload, round_.worker.spec.registration.token_secret_ref)
                await register(self._access.http(), target.url, secret, sent, tls)
                since = (
                    (memory.since if was_registered and memory else None)
                    or (old.since if old is not None and old.registered else None)
                    or round_.now
                )
                self._memory[mem_key] = registration.Memory(digest, time.monotonic(), payload["capacity"], since)
                if not was_registered or (memory and memory.error):
                    self._post_event(
                        ref, "Normal", "Registered", f"registered with {target.url}, capacity {payload['capacity']}"
                    )
            else:
                await unregister(self._access.http(), target.url, secret, payload["name"], tls)
                self._memory[mem_key] = registration.Memory(None, time.monotonic())
                if was_registered:
                    self._post_event(ref, "Normal", "Unregistered", f"unregistered from {target.url}")
        except RegistrationError as exc:
            if not memory or memory.error != str(exc):
                self._post_event(ref, "Warning", "RegistrationFailed", f"{target.url}: {exc}")
            base = memory or registration.Memory(None, time.monotonic())
            self._memory[mem_key] = registration.Memory(
                base.digest, time.monotonic(), base.capacity, base.since, str(exc)
            )
        return self._memory[mem_key].entry(target.url)

    async def _with_token(
        self, key: Key, payload: dict[str, Any], token_ref: api.SecretKeyRef | None
    ) -> dict[str, Any]:
        """The payload with the worker's token, read from its Secret for the call; a rotated one is registered
        once it had time to reach the pods (`registration.next_token`). The digest that decides when to call is
        taken without it."""
        if token_ref is None:
            return payload
        read = await self._access.secret_value(key[0], token_ref.name, token_ref.key)
        state = registration.next_token(self._tokens.get(key), read, time.monotonic(), self._token_delay)
        self._tokens[key] = state
        return {**payload, "token": state.value}
