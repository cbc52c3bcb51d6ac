"""BYOC capability registration with orchestrators: what to register, and what to do about each orchestrator.

Pure. Contract (protocols.md 3a; go-livepeer byoc/job_orchestrator.go, core/external_capabilities.go):
POST {orch}/capability/register with the raw orchestrator secret as Authorization and a JSON body; registering
again replaces the entry; POST {orch}/capability/unregister with the raw capability name. Orchestrators never
health-check, so re-registering periodically is their only recovery. What capacity to register is in `slots.py`;
a capability is only unregistered when the worker goes (or leaves an orchestrator) and no stream runs on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import pydantic

from byoc_operator import api
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
    # Where the secret and CA are read: None for the worker's namespace; a BYOCOrchestrator's are in the operator's.
    secret_namespace: str | None = None
    channel_origins: tuple[str, ...] = ()  # where its channels are, besides url's origin
    allow_plaintext: bool = False  # the secret may go to an http:// url (api.secret_may_travel)


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


def allowed_origins(targets: list[Target]) -> list[str]:
    """The origins a worker's pods may open channel and callback URLs on: each orchestrator's own, and the
    channel origins it declares."""
    found = set()
    for target in targets:
        parts = urlsplit(target.url)
        found.add(f"{parts.scheme}://{parts.netloc}".lower())
        found.update(origin.lower() for origin in target.channel_origins)
    return sorted(found)


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
                allow_plaintext=bool(tls and tls.allow_plaintext),
                cli_url=ref.cli_url.rstrip("/") if ref.cli_url else None,
                channel_origins=tuple(ref.channel_origins),
            )
        )
    return out


def selected_targets(worker: Worker, secrets: list[dict[str, Any]]) -> list[Target]:
    """Orchestrators described by labelled Secrets (keys 'url', 'secret', optional 'ca.crt', 'insecureSkipVerify',
    'allowPlaintext')."""
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
                allow_plaintext=secret.get("plaintext", False),
            )
        )
    return out


def labels_match(labels: dict[str, str] | None, wanted: dict[str, str]) -> bool:
    return all((labels or {}).get(k) == v for k, v in wanted.items())


def offered(orchestrator: dict[str, Any], namespace_labels: dict[str, str]) -> bool:
    """Whether a BYOCOrchestrator (as indexed: labels and spec) is offered to a namespace with these labels."""
    wanted = ((orchestrator.get("spec") or {}).get("namespaceSelector") or {}).get("matchLabels") or {}
    return labels_match(namespace_labels, wanted)


def orchestrator_target(orchestrator: dict[str, Any], operator_namespace: str) -> Target:
    """A BYOCOrchestrator as a target: its URL, its Secret and CA in the operator's namespace, nothing else."""
    spec = api.BYOCOrchestratorSpec.model_validate(orchestrator.get("spec") or {})
    ca = spec.tls.ca_bundle_secret_ref if spec.tls else None
    return Target(
        url=spec.url.rstrip("/"),
        secret_name=spec.secret_ref.name if spec.secret_ref else None,
        secret_key=spec.secret_ref.key if spec.secret_ref else "secret",
        ca_secret_name=ca.name if ca else None,
        ca_secret_key=ca.key if ca else None,
        insecure=bool(spec.tls and spec.tls.insecure_skip_verify),
        allow_plaintext=bool(spec.tls and spec.tls.allow_plaintext),
        cli_url=spec.cli_url.rstrip("/") if spec.cli_url else None,
        secret_namespace=operator_namespace,
        channel_origins=tuple(spec.channel_origins),
    )


def unavailable(name: str, namespace: str) -> api.OrchestratorStatus:
    """The status entry of a named BYOCOrchestrator that is missing, invalid or not offered to the namespace: one
    message for all (a tenant must not learn which orchestrators exist)."""
    return api.OrchestratorStatus(
        url=f"byocorchestrator/{name}",
        last_error=f"no BYOCOrchestrator '{name}' is offered to namespace {namespace}",
    )


def cluster_targets(
    worker: Worker,
    orchestrators: dict[str, dict[str, Any]],
    namespace_labels: dict[str, str],
    operator_namespace: str | None,
) -> tuple[list[Target], list[api.OrchestratorStatus]]:
    """The BYOCOrchestrators (by name -> indexed object) this worker references and its namespace is offered, and
    status entries for the named ones it cannot use."""
    found: dict[str, Target] = {}
    refused: list[api.OrchestratorStatus] = []
    for ref in worker.spec.orchestrator_refs or []:
        if ref.name is not None:
            names = [ref.name]
        else:
            assert ref.selector is not None
            match = ref.selector.match_labels
            names = sorted(n for n, o in orchestrators.items() if labels_match(o.get("labels"), match))
        for name in names:
            orchestrator = orchestrators.get(name)
            target = None
            if orchestrator is not None and operator_namespace and offered(orchestrator, namespace_labels):
                with contextlib.suppress(pydantic.ValidationError):  # the API server's schema should refuse it
                    target = orchestrator_target(orchestrator, operator_namespace)
            if target is not None:
                found.setdefault(name, target)
            elif ref.name is not None:
                refused.append(unavailable(name, worker.namespace))
    return list(found.values()), refused


def own_refusals(worker: Worker) -> list[api.OrchestratorStatus]:
    """Status entries for the orchestrators a namespace brings itself where the operator does not allow it."""
    reason = (
        "orchestrators named in a BYOCWorker are not allowed by this operator (nothing was sent): use "
        "spec.orchestratorRefs, the BYOCOrchestrators your cluster administrator offers"
    )
    where = [ref.url for ref in worker.spec.orchestrators or []]
    if worker.spec.registration.orchestrator_selector is not None:
        where.append("registration.orchestratorSelector")
    return [api.OrchestratorStatus(url=url, last_error=reason) for url in where]


def without_own(worker: Worker) -> Worker:
    """The worker without the orchestrators its namespace brings itself: what is rendered and registered where the
    operator does not allow them."""
    spec = worker.spec
    if not spec.orchestrators and spec.registration.orchestrator_selector is None:
        return worker
    registration = spec.registration.model_copy(update={"orchestrator_selector": None})
    return dataclasses.replace(
        worker, spec=spec.model_copy(update={"orchestrators": None, "registration": registration})
    )


def targets(worker: Worker, secrets: list[dict[str, Any]], admin: list[Target] | None = None) -> list[Target]:
    """Every orchestrator this worker should be registered with, explicit ones first, each URL once; `admin`: the
    BYOCOrchestrators it may use (`cluster_targets`)."""
    seen: dict[str, Target] = {}
    for target in [*explicit_targets(worker), *selected_targets(worker, secrets), *(admin or [])]:
        seen.setdefault(target.url, target)
    return list(seen.values())


# A rotated worker token reaches the pods at the kubelet's next Secret sync (about a minute, often less), and
# the orchestrator at the next registration; the pods accept the previous token for a while after a change
# (byoc_edge/bearer.py), but cannot accept one they have not read yet. So a new token is registered only
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

    def entry(self, url: str) -> api.OrchestratorStatus:
        """The status entry this memory stands for."""
        registered = self.digest is not None
        return api.OrchestratorStatus(
            url=url,
            registered=registered,
            capacity=self.capacity,
            since=self.since if registered else None,
            last_error=self.error,
        )


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
    entries: list[api.OrchestratorStatus],
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
    held = [e for e in entries if e.held_by]
    if held:
        first = held[0]
        return False, "CapabilityConflict", (
            f"{len(held)}/{len(entries)} orchestrator(s) have this capability name registered for another worker; "
            f"{first.url}: held by BYOCWorker {first.held_by} (created first), not registered there"
        )
    failed = [e for e in entries if e.last_error]
    if failed:
        first = failed[0]
        return False, "RegistrationFailed", f"{len(failed)}/{len(entries)} failed; {first.url}: {first.last_error}"
    if capacity == 0:
        return False, "NoCapacity", "no ready pod: advertised with no free slot"
    if routed and slots is None:
        return False, "RoutersUnreachable", "no router of this worker answers yet: advertised with no free slot"
    waiting = [e.url for e in entries if not e.registered]
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
