"""Computing a BYOCWorker's status from what the cluster shows. Pure: objects in, status out.

Conditions (Kubernetes convention: positive polarity, reason in CamelCase, message for people):
- Ready: the worker can take sessions now and has all the pods it asked for.
- Progressing: pods are being created, scheduled, started or rolled.
- Degraded: something needs a person (no GPU fits, the image cannot be pulled, pods crash, bad spec).
- InsecureTransport (present only while true, like Degraded a warning): some orchestrator is called over http
  with its secret (tls.allowPlaintext) or without verifying its certificate (tls.insecureSkipVerify).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pydantic

from byoc_operator import api
from byoc_operator.advertise import Address
from byoc_operator.registration import Target, registered_condition
from byoc_operator.render.worker import LABEL_COMPONENT, Worker
from byoc_operator.slots import Slots

READY, PROGRESSING, DEGRADED, REGISTERED = "Ready", "Progressing", "Degraded", "Registered"
INSECURE = "InsecureTransport"

IMAGE_PULL_REASONS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
CONFIG_REASONS = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
GPU_RESOURCE_PREFIX = "nvidia.com/"


@dataclass(frozen=True)
class PodProblem:
    """Why a pod is not serving, in the words the status shows."""

    reason: str
    message: str
    hard: bool  # needs a person (Degraded), as opposed to still on its way (Progressing)


def pod_problem(pod: dict[str, Any]) -> PodProblem | None:
    """The most telling reason a pod is not Ready, or None if it is Ready."""
    status = pod.get("status") or {}
    name = pod.get("metadata", {}).get("name", "?")
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return PodProblem("Terminating", f"pod {name} is terminating", hard=False)
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    scheduled = conditions.get("PodScheduled")
    if scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        message = scheduled.get("message", "")
        reason = "InsufficientGPU" if GPU_RESOURCE_PREFIX in message else "Unschedulable"
        return PodProblem(reason, f"pod {name} cannot be scheduled: {message}", hard=True)
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        why = waiting.get("reason", "")
        detail = waiting.get("message", "")
        if why in IMAGE_PULL_REASONS:
            head = f"pod {name}: {why} for image {cs.get('image', '?')}"
            return PodProblem("ImagePullError", _join(head, detail), True)
        if why == "CrashLoopBackOff":
            last = (cs.get("lastState") or {}).get("terminated") or {}
            exit_info = f" (last exit code {last.get('exitCode')}, {last.get('reason', 'Error')})" if last else ""
            return PodProblem(
                "CrashLoop",
                f"pod {name}: container {cs.get('name')} is crash-looping, "
                f"restarted {cs.get('restartCount', 0)} times{exit_info}",
                True,
            )
        if why in CONFIG_REASONS:
            return PodProblem("ContainerConfigError", _join(f"pod {name}: {why}", detail), True)
    ready = conditions.get("Ready")
    if ready and ready.get("status") == "True":
        return None
    if status.get("phase") == "Pending":
        return PodProblem("PodsPending", f"pod {name} is pending", hard=False)
    if status.get("phase") in ("Failed", "Succeeded"):
        return PodProblem("PodExited", f"pod {name} exited ({status.get('phase')})", hard=True)
    return PodProblem("PodsStarting", f"pod {name} is running but not ready yet (loading its model?)", hard=False)


def _join(head: str, detail: str) -> str:
    return f"{head}: {detail}" if detail else head


def summarise(problems: list[PodProblem]) -> PodProblem | None:
    """One problem to report: hard ones first, then the most common reason; the message says how many share it."""
    if not problems:
        return None
    hard = [p for p in problems if p.hard] or problems
    reason, count = Counter(p.reason for p in hard).most_common(1)[0]
    first = next(p for p in hard if p.reason == reason)
    more = f" (and {count - 1} more pod(s) with the same reason)" if count > 1 else ""
    return PodProblem(reason, first.message + more, first.hard)


def condition(
    type_: str, ok: bool, reason: str, message: str, generation: int, previous: dict[str, dict[str, Any]], now: str
) -> dict[str, Any]:
    """A condition whose lastTransitionTime only moves when its status does."""
    status = "True" if ok else "False"
    before = previous.get(type_)
    since = before.get("lastTransitionTime") if before and before.get("status") == status else None
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since or now,
        "observedGeneration": generation,
    }


def compute_status(
    worker: Worker,
    deployment: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    previous: dict[str, Any] | None,
    now: str,
    error: str | None = None,
) -> dict[str, Any]:
    """The whole status subresource for this worker, given its children as the API server shows them."""
    previous = previous or {}
    old_conditions = {c["type"]: c for c in previous.get("conditions") or [] if "type" in c}
    desired = worker.spec.replicas
    dep_status = (deployment or {}).get("status") or {}
    dep_current = deployment is not None and (
        dep_status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
    )
    ready = int(dep_status.get("readyReplicas", 0) or 0)
    available = int(dep_status.get("availableReplicas", 0) or 0)
    updated = int(dep_status.get("updatedReplicas", 0) or 0)
    replicas = int(dep_status.get("replicas", 0) or 0)
    live_pods = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    problem = summarise([p for p in (pod_problem(pod) for pod in live_pods) if p])

    converged = (
        deployment is not None
        and dep_current
        and ready >= desired
        and updated >= desired
        and replicas == desired
        and available >= desired
    )

    if error:
        ready_c = (False, "ReconcileError", error)
        degraded_c = (True, "ReconcileError", error)
    elif problem and problem.hard:
        degraded_c = (True, problem.reason, problem.message)
        ready_c = (False, problem.reason, problem.message)
    else:
        degraded_c = (False, "AsExpected", "no problem seen")
        ready_c = (False, "", "")

    if not error:
        if desired == 0:
            ready_c = (False, "ScaledToZero", "spec.replicas is 0: no pods, no capacity")
        elif converged:
            ready_c = (True, "AllPodsReady", f"{ready}/{desired} pods ready")
        elif not (problem and problem.hard):
            why = problem.message if problem else "waiting for the Deployment to report ready pods"
            reason = problem.reason if problem else "PodsStarting"
            ready_c = (False, reason, f"{ready}/{desired} pods ready: {why}")

    if converged or (desired == 0 and replicas == 0):
        progressing_c = (False, "Converged", f"{ready}/{desired} pods ready, all on the current revision")
    elif deployment is None:
        progressing_c = (True, "Creating", "creating the Deployment")
    elif problem and problem.hard:
        progressing_c = (False, "Stalled", problem.message)
    elif updated < replicas or replicas > desired:
        progressing_c = (True, "RollingOut", f"{updated}/{desired} pods on the current revision")
    else:
        msg = problem.message if problem else f"{ready}/{desired} pods ready"
        progressing_c = (True, problem.reason if problem else "ScalingUp", msg)

    gen = worker.generation
    conditions = [
        condition(READY, *ready_c, gen, old_conditions, now),
        condition(PROGRESSING, *progressing_c, gen, old_conditions, now),
        condition(DEGRADED, *degraded_c, gen, old_conditions, now),
    ]
    # Keep conditions owned by other parts (e.g. Registered) as they are.
    conditions += [c for t, c in old_conditions.items() if t not in (READY, PROGRESSING, DEGRADED)]
    status: dict[str, Any] = {
        "observedGeneration": gen,
        "conditions": conditions,
        "replicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": available,
        "updatedReplicas": updated,
        "ready": f"{ready}/{desired}",
        "capacity": ready * worker.spec.sessions_per_pod,
        "endpoint": worker.endpoint,
        "selector": worker.selector,
    }
    if "orchestrators" in previous:
        status["orchestrators"] = previous["orchestrators"]
    return status


def is_worker_pod(pod: dict[str, Any]) -> bool:
    """Worker pods, as opposed to the same worker's router pods."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return labels.get(LABEL_COMPONENT, "worker") == "worker"


def orchestrator_entries(status: dict[str, Any] | None) -> list[api.OrchestratorStatus]:
    """The per-orchestrator entries of a status as written (an entry that does not parse is left out: the next
    round writes it again)."""
    out = []
    for entry in (status or {}).get("orchestrators") or []:
        with contextlib.suppress(pydantic.ValidationError):
            out.append(api.OrchestratorStatus.model_validate(entry))
    return out


def entry_json(entry: api.OrchestratorStatus) -> dict[str, Any]:
    """An entry as the status subresource holds it (camelCase, unset fields left out)."""
    return entry.model_dump(by_alias=True, exclude_none=True)


def with_registration(
    status: dict[str, Any],
    entries: list[api.OrchestratorStatus],
    targets: list[Any],
    *,
    deleting: bool,
    now: str,
    generation: int,
    note: str | None = None,
    slots: Slots | None = None,
    routed: bool = False,
    address: Address | None = None,
) -> dict[str, Any]:
    """Status with the per-orchestrator entries and the Registered condition they imply; `note` is added to the
    message while some orchestrator does not list the worker yet. `routed` (BYOC): what is advertised is what the
    routers report, `slots` (None when no router answered), at `address`, which becomes ``status.endpoint``."""
    out = dict(status)
    old = {c["type"]: c for c in status.get("conditions") or []}
    if targets or entries:
        out["orchestrators"] = [entry_json(e) for e in entries]
    else:
        out.pop("orchestrators", None)
    ok, reason, message = registered_condition(entries, status.get("capacity", 0), deleting, slots, routed, address)
    if address is not None and address.url:
        out["endpoint"] = address.url
    if note and reason == "Registering":
        message = f"{message}; {note}"
    registered = condition(REGISTERED, ok, reason, message, generation, old, now)
    out["conditions"] = [c for c in status.get("conditions") or [] if c["type"] != REGISTERED] + [registered]
    return out


def insecure_targets(targets: list[Target]) -> tuple[list[str], list[str]]:
    """The URLs of the orchestrators whose secret travels in plaintext (where it is allowed: elsewhere it is not
    sent, `orchestrator.py`), and of those whose certificate is not verified (security review M7)."""
    plaintext = [
        t.url for t in targets if t.secret_name is not None and t.allow_plaintext and not t.url.startswith("https://")
    ]
    unverified = [t.url for t in targets if t.insecure and t.url.startswith("https://")]
    return plaintext, unverified


def with_transport(status: dict[str, Any], targets: list[Target], generation: int, now: str) -> dict[str, Any]:
    """Status with the InsecureTransport condition while some orchestrator is called insecurely, without it
    otherwise."""
    plaintext, unverified = insecure_targets(targets)
    kept = [c for c in status.get("conditions") or [] if c["type"] != INSECURE]
    if not plaintext and not unverified:
        return {**status, "conditions": kept}
    parts = []
    if plaintext:
        parts.append(f"the orchestrator secret is sent in plaintext (tls.allowPlaintext) to {', '.join(plaintext)}")
    if unverified:
        parts.append(f"the certificate is not verified (tls.insecureSkipVerify) for {', '.join(unverified)}")
    message = "; ".join(parts) + ": anyone on the path can read the secret and change the calls"
    reason = "PlaintextSecret" if plaintext else "UnverifiedCertificate"
    old = {c["type"]: c for c in status.get("conditions") or []}
    # Abnormal-true, as Degraded: True is the warning.
    return {**status, "conditions": [*kept, condition(INSECURE, True, reason, message, generation, old, now)]}


def invalid_spec_status(body: dict[str, Any], message: str, now: str, reason: str = "InvalidSpec") -> dict[str, Any]:
    """Status for an object the operator will not reconcile: a spec it cannot parse or does not allow
    (InvalidSpec), or a child name another object holds (NameConflict)."""
    previous = body.get("status") or {}
    old = {c["type"]: c for c in previous.get("conditions") or [] if "type" in c}
    generation = int(body["metadata"].get("generation", 0))
    return {
        **previous,
        "observedGeneration": generation,
        "conditions": [
            condition(READY, False, reason, message, generation, old, now),
            condition(PROGRESSING, False, reason, message, generation, old, now),
            condition(DEGRADED, True, reason, message, generation, old, now),
        ],
    }


def transitions(before: dict[str, Any] | None, after: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(event type, reason, message) for each condition whose status or reason changed: what deserves an Event."""
    old = {c["type"]: c for c in (before or {}).get("conditions") or []}
    events = []
    for c in after["conditions"]:
        prev = old.get(c["type"])
        if prev and prev.get("status") == c["status"] and prev.get("reason") == c["reason"]:
            continue
        if c["type"] == READY and c["status"] == "True":
            events.append(("Normal", "Ready", c["message"]))
        elif c["type"] in (DEGRADED, INSECURE) and c["status"] == "True":
            events.append(("Warning", c["reason"], c["message"]))
        elif c["type"] == DEGRADED and prev and prev.get("status") == "True":
            events.append(("Normal", "Recovered", f"no longer degraded (was {prev.get('reason')})"))
        elif c["type"] == READY and prev and prev.get("status") == "True":
            events.append(("Warning", "NotReady", c["message"] or c["reason"]))
    return events


def same_status(a: dict[str, Any] | None, b: dict[str, Any]) -> bool:
    """Whether writing b over a would change anything (so an idle reconcile writes nothing)."""
    return (a or {}) == b
