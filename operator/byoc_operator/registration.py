"""BYOC capability registration with orchestrators: what to register, and what to do about each orchestrator.

Pure. Contract (protocols.md 3a; go-livepeer byoc/job_orchestrator.go, core/external_capabilities.go):
POST {orch}/capability/register with the raw orchestrator secret as Authorization and a JSON body; registering
again replaces the entry; POST {orch}/capability/unregister with the raw capability name. Orchestrators never
health-check, so re-registering periodically is their only recovery. What capacity to register is in `slots.py`;
a capability is only unregistered when the worker goes (or leaves an orchestrator) and no stream runs on it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from byoc_operator.advertise import Address
from byoc_operator.render.worker import Worker
from byoc_operator.slots import Slots

FINALIZER = "byoc.livepeer.org/registration"
ORCHESTRATOR_LABEL = "byoc.livepeer.org/orchestrator"


@dataclass(frozen=True)
class Target:
    """One orchestrator to register with, and where its secret lives (never the secret itself)."""

    url: str
    secret_name: str | None  # None only for Live Runner static mode, whose upserts carry no secret
    secret_key: str
    ca_secret_name: str | None = None
    ca_secret_key: str | None = None
    insecure: bool = False
    cli_url: str | None = None  # Live Runner static mode: where /registerLiveRunners is served


def capability_payload(worker: Worker, capacity: int, url: str, token: str = "") -> dict[str, Any]:
    """The /capability/register body (field names as go-livepeer's ExternalCapability JSON); `url` is the
    router's advertised address (`advertise.py`). The orchestrator sends `token` back to the worker as
    'Authorization: Bearer <token>'."""
    spec = worker.spec
    return {
        "name": spec.capability.name,
        "description": spec.capability.description,
        "url": url,
        "capacity": capacity,
        "price_per_unit": spec.pricing.price_per_unit,
        "price_scaling": spec.pricing.price_scaling,
        "currency": spec.pricing.currency,
        "token": token,
    }


def payload_digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def explicit_targets(worker: Worker) -> list[Target]:
    out = []
    for ref in worker.spec.orchestrators or []:
        tls = ref.tls
        ca = tls.ca_bundle_secret_ref if tls else None
        out.append(
            Target(
                url=ref.url.rstrip("/"),
                secret_name=ref.secret_ref.name if ref.secret_ref else None,
                secret_key=ref.secret_ref.key if ref.secret_ref else "secret",
                ca_secret_name=ca.name if ca else None,
                ca_secret_key=ca.key if ca else None,
                insecure=bool(tls and tls.insecure_skip_verify),
                cli_url=ref.cli_url.rstrip("/") if ref.cli_url else None,
            )
        )
    return out


def selected_targets(worker: Worker, secrets: list[dict[str, Any]]) -> list[Target]:
    """Orchestrators described by labelled Secrets (keys 'url', 'secret', optional 'ca.crt', 'insecureSkipVerify')."""
    selector = worker.spec.registration.orchestrator_selector
    if selector is None:
        return []
    out = []
    for secret in secrets:
        labels = secret.get("labels") or {}
        if not all(labels.get(k) == v for k, v in selector.match_labels.items()) or not secret.get("url"):
            continue
        out.append(
            Target(
                url=secret["url"].rstrip("/"),
                secret_name=secret["name"],
                secret_key="secret",
                ca_secret_name=secret["name"] if secret.get("has_ca") else None,
                ca_secret_key="ca.crt" if secret.get("has_ca") else None,
                insecure=secret.get("insecure", False),
            )
        )
    return out


def targets(worker: Worker, secrets: list[dict[str, Any]]) -> list[Target]:
    """Every orchestrator this worker should be registered with, explicit ones first, each URL once."""
    seen: dict[str, Target] = {}
    for target in [*explicit_targets(worker), *selected_targets(worker, secrets)]:
        seen.setdefault(target.url, target)
    return list(seen.values())


# A rotated worker token reaches the pods at the kubelet's next Secret sync (about a minute, often less), and
# the orchestrator at the next registration; the pods accept the previous token for a while after a change
# (byoc_runtime/bearer.py), but cannot accept one they have not read yet. So a new token is registered only
# once it has been in the Secret this long: a 401 would make the orchestrator drop the capability.
TOKEN_PROPAGATION_SECONDS = 120.0


@dataclass(frozen=True)
class SentToken:
    """The worker token registered, and a newer one read from the Secret, waiting to be registered."""

    value: str
    candidate: str | None = None
    seen_at: float = 0.0


def next_token(state: SentToken | None, read: str, now: float, delay: float = TOKEN_PROPAGATION_SECONDS) -> SentToken:
    """Which token to register now, given the one registered and the one the Secret holds."""
    if state is None or read == state.value:
        return SentToken(read)  # the first registration (or after an operator restart): nothing to wait for
    if state.candidate != read:
        return SentToken(state.value, read, now)
    if now - state.seen_at >= delay:
        return SentToken(read)
    return state


Action = Literal["register", "unregister", "keep"]


@dataclass(frozen=True)
class Memory:
    """What this operator last did with one orchestrator for one worker."""

    digest: str | None  # payload registered; None once unregistered
    at: float  # monotonic time of that call
    capacity: int = 0
    since: str | None = None  # when it became registered
    error: str | None = None  # the last failed call's sanitised message, until a call succeeds

    def entry(self, url: str) -> dict[str, Any]:
        """The status entry this memory stands for."""
        out: dict[str, Any] = {"url": url, "registered": self.digest is not None, "capacity": self.capacity}
        if self.since and self.digest is not None:
            out["since"] = self.since
        if self.error:
            out["lastError"] = self.error
        return out


RETRY_SECONDS = 5.0


def plan(want_registered: bool, digest: str, memory: Memory | None, now: float, refresh_seconds: float) -> Action:
    """Decide the call to make to one orchestrator."""
    if memory is not None and memory.error:  # the last call failed: try again, but not on every event
        if now - memory.at < RETRY_SECONDS:
            return "keep"
        return "register" if want_registered else "unregister"
    if not want_registered:
        return "unregister" if memory is None or memory.digest is not None else "keep"
    if memory is None or memory.digest != digest or now - memory.at >= refresh_seconds:
        return "register"
    return "keep"


def registered_condition(
    entries: list[dict[str, Any]],
    capacity: int,
    deleting: bool,
    slots: Slots | None = None,
    routed: bool = False,
    address: Address | None = None,
) -> tuple[bool, str, str]:
    """(status, reason, message) of the Registered condition from the per-orchestrator entries. `capacity` is the
    ready pods' slots; `slots` what the routers can place (BYOC, `routed`), which is what is advertised, at
    `address`."""
    if deleting:
        if slots is not None and slots.active:
            return False, "Unregistering", (
                f"the worker is being deleted: {slots.active} stream(s) still running; registered with no free slot "
                "until they end or the drain grace is over"
            )
        return False, "Unregistering", "the worker is being deleted"
    if not entries:
        return False, "NoOrchestrators", "no orchestrator named or selected"
    if address is not None and address.url is None:
        return False, "AddressPending", f"not registered yet: {address.note}"
    held = [e for e in entries if e.get("heldBy")]
    if held:
        first = held[0]
        return False, "CapabilityConflict", (
            f"{len(held)}/{len(entries)} orchestrator(s) have this capability name registered for another worker; "
            f"{first['url']}: held by BYOCWorker {first['heldBy']} (created first), not registered there"
        )
    failed = [e for e in entries if e.get("lastError")]
    if failed:
        first = failed[0]
        return False, "RegistrationFailed", f"{len(failed)}/{len(entries)} failed; {first['url']}: {first['lastError']}"
    if capacity == 0:
        return False, "NoCapacity", "no ready pod: advertised with no free slot"
    if routed and slots is None:
        return False, "RoutersUnreachable", "no router of this worker answers yet: advertised with no free slot"
    waiting = [e["url"] for e in entries if not e.get("registered")]
    if waiting:
        return False, "Registering", f"{len(waiting)}/{len(entries)} orchestrator(s) do not list it yet: {waiting[0]}"
    placed = f"; routers: {slots.describe()}" if slots is not None else ""
    message = f"registered with {len(entries)} orchestrator(s), capacity {capacity}{placed}"
    if address is not None and not address.outside:
        message = f"{message}; {address.note}"
    return True, "AllRegistered", message


def our_runners(discovery: Any, pods: list[str]) -> list[dict[str, Any]]:
    """The runners in an orchestrator's /discovery answer that are this worker's pods."""
    routes = {f"/apps/{pod}/" for pod in pods}
    found = []
    for orchestrator in discovery if isinstance(discovery, list) else []:
        for runner in (orchestrator or {}).get("runners") or []:
            url = str(runner.get("url", ""))
            if any(route in url for route in routes):
                found.append(runner)
    return found


def sanitise(message: str, *secrets: str) -> str:
    """An error text safe for status, events and logs: secrets masked, length bounded."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    printable = "".join(c if c.isprintable() else " " for c in message[:1000])
    return " ".join(printable.split())[:300]
