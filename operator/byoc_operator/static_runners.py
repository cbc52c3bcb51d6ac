"""Live Runner static mode: what to upsert to each orchestrator's CLI port, and what its status says. Pure.

Contract (protocols.md 3b; go-livepeer ``server/webserver.go`` ``registerLiveRunnersHandler``,
``ai/runner/live_runner.go`` ``RegisterStaticRunners``): ``POST {cli}/registerLiveRunners`` with a runners.json
document, no auth; entries are upserted by label and never removed, and capacity 0 is read as 1, so a pod that
went away is upserted once more as retired (a health check nothing passes) instead of being left to the health
poll alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from byoc_operator import api
from byoc_operator.registration import Target, payload_digest
from byoc_operator.render.runners import configmap_name, retired
from byoc_operator.render.worker import Worker


@dataclass(frozen=True)
class Upserted:
    """What this operator last upserted to one orchestrator for one worker, and how it went."""

    digest: str | None  # of the last document accepted; None before the first success
    at: float  # monotonic time of the last call
    live: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> entry, as accepted
    healthy: frozenset[str] = frozenset()  # labels the orchestrator found healthy when it took them
    error: str | None = None


def upsert_document(live: list[dict[str, Any]], known: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The ready pods' entries, plus every entry known to be upserted earlier whose pod is no longer ready,
    retired."""
    labels = {e["label"] for e in live}
    gone = [retired(known[label]) for label in sorted(known) if label not in labels]
    return {"runners": [*live, *gone]}


def document_digest(document: dict[str, Any]) -> str:
    return payload_digest(document)


def known_entries(memory: Upserted | None, published: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Entries this orchestrator may hold for the worker: the operator's memory of its own upserts, or, after a
    restart (no memory yet), what the ConfigMap published."""
    if memory is not None and memory.digest is not None:
        return dict(memory.live)
    return {e["label"]: e for e in published}


def our_runners(discovery: Any, labels: set[str]) -> list[dict[str, Any]]:
    """The runners in a /discovery answer that are these labels (label routing: ``/apps/{label}/session``)."""
    found = []
    for orchestrator in discovery if isinstance(discovery, list) else []:
        for runner in (orchestrator or {}).get("runners") or []:
            url = str(runner.get("url", ""))
            if any(f"/apps/{label}/" in url for label in labels):
                found.append(runner)
    return found


def status_entry(
    url: str,
    labels: set[str],
    memory: Upserted | None,
    discovered: list[dict[str, Any]] | None,
    sessions_per_pod: int,
    previous: api.OrchestratorStatus | None,
    now: str,
) -> api.OrchestratorStatus:
    """One orchestrator's status entry. What /discovery lists wins (it follows the orchestrator's health polls);
    without it, the health the orchestrator reported when it took the last upsert."""
    if discovered is not None:
        runners, capacity = len(discovered), sum(int(r.get("capacity", 0)) for r in discovered)
    elif memory is not None and memory.digest is not None:
        runners = len(memory.healthy & labels)
        capacity = runners * sessions_per_pod
    else:
        runners, capacity = 0, 0
    since = None
    if runners > 0:
        since = (previous.since if previous is not None and previous.registered else None) or now
    return api.OrchestratorStatus(
        url=url,
        registered=runners > 0,
        capacity=capacity,
        runners=runners,
        since=since,
        last_error=memory.error if memory is not None and memory.error else None,
    )


RETRY_SECONDS = 5.0


def due(digest: str, memory: Upserted | None, now: float, refresh_seconds: float) -> bool:
    """Whether to upsert now: the document changed, the refresh period passed (an orchestrator restarted since
    holds only its runners.json), or the last call failed and a short pause passed."""
    if memory is None:
        return True
    if memory.error:
        return now - memory.at >= RETRY_SECONDS
    return memory.digest != digest or now - memory.at >= refresh_seconds


def static_note(worker: Worker, targets: list[Target]) -> str | None:
    """What the Registered condition adds while an orchestrator without a CLI URL does not list the worker."""
    if all(t.cli_url for t in targets):
        return None
    return (
        f"orchestrators without cliUrl read ConfigMap {configmap_name(worker)} (runners.json) at start only: "
        "mount it as -liveRunnerConfig and restart them, or set cliUrl"
    )
