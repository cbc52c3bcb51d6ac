"""The built-in autoscaler: replicas follow the live sessions on the worker pods.

Scale up at once to what the target share of busy slots needs; scale down only after demand stayed low for the
configured delay, and only by as many pods as are idle. Busy pods carry a pod-deletion-cost equal to their live
sessions, so the ReplicaSet controller removes idle ones first; a pod that does get removed still drains (preStop)
before its streams are stopped.

`decide` and `deletion_costs` are pure; `Autoscaler` does the I/O: it asks each ready pod's /health (the worker
REST contract: our runtime reports active_streams, a PyTrickle worker reports IDLE or OK), and writes replicas
through the BYOCWorker (as HPA would through the scale subresource) and the cost annotation on pods.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from lightkube import ApiError, AsyncClient
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType

from byoc_operator import api, metrics
from byoc_operator.index import Key
from byoc_operator.render.worker import Worker
from byoc_operator.replies import json_reply

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
HEALTH_TIMEOUT_SECONDS = 3.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PodSessions:
    """One ready pod's live sessions; None when it did not answer (counted busy: never removed blindly)."""

    name: str
    active: int | None


@dataclass(frozen=True)
class Decision:
    replicas: int
    low_since: float | None  # when demand first fell below the current replicas (scale-down clock)
    reason: str


def needed_replicas(policy: api.Autoscaling, busy: int, slots_per_pod: int) -> int:
    """Pods that put the busy slots at the target share, within the bounds."""
    need = math.ceil(busy * 100 / (slots_per_pod * policy.target_busy_percent))
    return max(policy.min_replicas, min(policy.max_replicas, need))


def decide(
    policy: api.Autoscaling,
    replicas: int,
    pods: list[PodSessions],
    slots_per_pod: int,
    low_since: float | None,
    now: float,
) -> Decision:
    # An unanswered pod may be streaming: count it as full so it neither hides demand nor gets removed.
    busy = sum(slots_per_pod if p.active is None else p.active for p in pods)
    need = needed_replicas(policy, busy, slots_per_pod)
    clamped = max(policy.min_replicas, min(policy.max_replicas, replicas))
    share = f"{busy} of {len(pods) * slots_per_pod} session slots busy (target {policy.target_busy_percent}%)"
    silent = sum(1 for p in pods if p.active is None)
    if silent:
        share += f"; {silent} pod(s) did not answer /health and count as full"
    if clamped != replicas:
        return Decision(clamped, None, f"replicas brought within [{policy.min_replicas}, {policy.max_replicas}]")
    if need > replicas:
        return Decision(need, None, f"scaled up: {share}")
    if need == replicas:
        return Decision(replicas, None, share)
    if low_since is None:
        return Decision(replicas, now, share)
    if now - low_since < policy.scale_down_delay_seconds:
        return Decision(replicas, low_since, share)
    # Only idle pods may go; pods still starting (not in `pods`) hold no stream and go first anyway.
    idle = sum(1 for p in pods if p.active == 0)
    removable = idle + max(0, replicas - len(pods))
    target = max(need, replicas - removable)
    if target == replicas:
        return Decision(replicas, low_since, f"{share}; no idle pod to remove")
    return Decision(target, None, f"scaled down: {share}")


def deletion_costs(pods: list[PodSessions], current: dict[str, str | None]) -> dict[str, str | None]:
    """Annotation changes that make busy pods costlier to delete (None removes it); unchanged pods are left out."""
    out: dict[str, str | None] = {}
    for pod in pods:
        if pod.active is None:
            continue
        want = str(pod.active) if pod.active > 0 else None
        if current.get(pod.name) != want:
            out[pod.name] = want
    return out


def active_sessions(health: Any) -> int | None:
    """Live sessions from a /health body: ours counts them, a PyTrickle worker says OK while it streams."""
    if not isinstance(health, dict):
        return None
    count = health.get("active_streams")
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        return count
    status = str(health.get("status", "")).upper()
    return {"IDLE": 0, "OK": 1}.get(status)


def pod_ip(pod: dict[str, Any]) -> str | None:
    status = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    if not ready or pod["metadata"].get("deletionTimestamp"):
        return None
    return status.get("podIP")


@dataclass
class State:
    low_since: float | None = None
    last: float = 0.0
    sessions: int | None = None
    last_scale_time: str | None = None


EventPoster = Callable[[dict[str, Any], str, str, str], None]


class Autoscaler:
    def __init__(self, client: AsyncClient, resource: Any, post_event: EventPoster, clock: Callable[[], str]) -> None:
        self.client = client
        self._resource = resource  # the BYOCWorker resource class
        self._post_event = post_event
        self._clock = clock
        self._state: dict[Key, State] = {}
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def forget(self, key: Key) -> None:
        self._state.pop(key, None)

    def status_fields(self, key: Key) -> dict[str, Any]:
        state = self._state.get(key)
        if state is None:
            return {}
        fields = {"sessions": state.sessions, "lastScaleTime": state.last_scale_time}
        return {k: v for k, v in fields.items() if v is not None}

    def due(self, key: Key, policy: api.Autoscaling) -> bool:
        state = self._state.get(key)
        return state is None or time.monotonic() - state.last >= policy.period_seconds * 0.9

    async def evaluate(self, key: Key, worker: Worker, pods: list[dict[str, Any]], ref: dict[str, Any]) -> None:
        """Count sessions, mark busy pods, and change replicas if the policy says so."""
        policy = worker.spec.autoscaling
        assert policy is not None
        state = self._state.setdefault(key, State())
        state.last = time.monotonic()
        sessions = await self._count(worker, pods)
        state.sessions = sum(p.active or 0 for p in sessions)
        current = {p["metadata"]["name"]: (p["metadata"].get("annotations") or {}).get(DELETION_COST) for p in pods}
        for name, cost in deletion_costs(sessions, current).items():
            try:
                await self.client.patch(
                    Pod,
                    name,
                    {"metadata": {"annotations": {DELETION_COST: cost}}},
                    namespace=key[0],
                    patch_type=PatchType.MERGE,
                )
            except ApiError as exc:  # the pod went meanwhile, or RBAC: scaling must go on either way
                log.warning("cannot mark pod %s/%s with its deletion cost: %s", key[0], name, exc.status.message)
                continue
            metrics.API_WRITES.labels("patch", "Pod").inc()
        decision = decide(
            policy, worker.spec.replicas, sessions, worker.spec.sessions_per_pod, state.low_since, now=state.last
        )
        state.low_since = decision.low_since
        if decision.replicas == worker.spec.replicas:
            return
        await self.client.patch(
            self._resource,
            key[1],
            {"spec": {"replicas": decision.replicas}},
            namespace=key[0],
            patch_type=PatchType.MERGE,
        )
        metrics.API_WRITES.labels("patch", api.KIND).inc()
        state.last_scale_time = self._clock()
        reason = "ScaledUp" if decision.replicas > worker.spec.replicas else "ScaledDown"
        message = f"replicas {worker.spec.replicas} -> {decision.replicas}: {decision.reason}"
        log.info("%s/%s %s", *key, message)
        self._post_event(ref, "Normal", reason, message)

    async def _count(self, worker: Worker, pods: list[dict[str, Any]]) -> list[PodSessions]:
        ready = [(p["metadata"]["name"], ip) for p in pods if (ip := pod_ip(p))]
        answers = await asyncio.gather(*(self._health(ip, worker.port) for _, ip in ready))
        return [PodSessions(name, active) for (name, _), active in zip(ready, answers, strict=True)]

    async def _health(self, ip: str, port: int) -> int | None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=HEALTH_TIMEOUT_SECONDS), cookie_jar=aiohttp.DummyCookieJar()
            )
        for prefix in ("", "/api"):
            try:
                # The pod runs the tenant's image: never follow where it points, never read more than a health answer.
                url = f"http://{ip}:{port}{prefix}/health"
                async with self._session.get(url, allow_redirects=False) as resp:
                    if resp.status == 404:
                        continue
                    return active_sessions(await json_reply(resp))
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return None
        return None
