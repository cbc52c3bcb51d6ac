"""Live Runner static mode: the runners.json an orchestrator started with ``-liveRunnerConfig`` reads, as a
ConfigMap, one runner per ready worker pod. Pure.

Format (go-livepeer ``ai/runner/live_runner.go``, ``StaticLiveRunnerConfigEntry``): ``{"runners": [{label, routing,
runner_url, health_url, healthy_status_code, app, mode, capacity, price_info}]}``. Entries are upserted by label
and never removed; the orchestrator polls each ``health_url`` every 5 s and one failed check makes the runner
unavailable.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from byoc_operator import api
from byoc_operator.render.pricing import price_info
from byoc_operator.render.probes import ready_probe_target
from byoc_operator.render.worker import Worker

RUNNERS_KEY = "runners.json"
# A health status no server answers with: upserting a gone pod's entry expecting it makes the orchestrator mark the
# runner unavailable at once and keeps it so even when a later pod gets the same IP (entries are never removed).
RETIRED_STATUS_CODE = 599


def configmap_name(worker: Worker) -> str:
    return f"{worker.name}-runners"


def slot_label(worker: Worker, slot: int) -> str:
    """The label of one runner slot. Upstream never removes an entry, so labels are slots that pods take in turn
    (``<worker>-<n>``, n below the most pods ever run at once) rather than one per pod, which would add entries on
    every rollout. The namespace keeps them unique on an orchestrator several namespaces share; routing by label
    makes it the session route (``/apps/{label}/session``), so it may not contain '/'."""
    return f"{worker.name}-{slot}.{worker.namespace}"


def health_url(worker: Worker, pod_ip: str) -> str:
    """What the orchestrator polls every 5 s: whether the pod can take work (``/ready``; for a user image the
    sidecar's, as the readiness probe). A draining pod stays healthy: a failed check releases its sessions."""
    target = ready_probe_target(worker)
    port = worker.port if target["port"] == "http" else target["port"]
    return f"http://{pod_ip}:{port}{target['path']}"


def runner_entry(worker: Worker, label: str, pod_ip: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "label": label,
        "routing": "label",
        "runner_url": f"http://{pod_ip}:{worker.port}",
        "health_url": health_url(worker, pod_ip),
        "healthy_status_code": 200,
        "app": worker.spec.capability.name,
        "mode": "persistent",
        "capacity": worker.spec.sessions_per_pod,
    }
    price = price_info(worker.spec.pricing)
    if price:
        entry["price_info"] = price
    return entry


def retired(entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "healthy_status_code": RETIRED_STATUS_CODE}


def pod_address(pod: dict[str, Any], serving: bool) -> str | None:
    """The IP of a pod that can hold a runner entry: Ready and not terminating, or (``serving``) any pod still
    running with an IP, terminating ones included, so a pod that drains keeps its entry, and its sessions, until
    it is gone."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    ip = status.get("podIP")
    if not ip:
        return None
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    if ready and not meta.get("deletionTimestamp"):
        return str(ip)
    draining = meta.get("deletionTimestamp") and status.get("phase", "Running") == "Running"
    return str(ip) if serving and draining else None


def _entry_ip(entry: dict[str, Any]) -> str | None:
    host = urlsplit(str(entry.get("runner_url", ""))).hostname
    return host or None


def runner_entries(worker: Worker, pods: list[dict[str, Any]], published: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per pod that serves: a slot published earlier stays with its pod while that pod runs (draining
    included); ready pods without a slot take the lowest free ones. Sorted by label: the ConfigMap is stable."""
    held = {_entry_ip(e): e["label"] for e in published if _entry_ip(e)}
    entries: dict[str, dict[str, Any]] = {}
    waiting = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        ip = pod_address(pod, serving=True)
        if ip is None:
            continue
        if ip in held and held[ip] not in entries:
            entries[held[ip]] = runner_entry(worker, held[ip], ip)
        elif pod_address(pod, serving=False):
            waiting.append(ip)
    slot = 0
    for ip in waiting:
        while slot_label(worker, slot) in entries:
            slot += 1
        entries[slot_label(worker, slot)] = runner_entry(worker, slot_label(worker, slot), ip)
    return [entries[label] for label in sorted(entries)]


def runners_json(entries: list[dict[str, Any]]) -> str:
    return json.dumps({"runners": entries}, indent=2, sort_keys=True) + "\n"


def render_runners_configmap(worker: Worker, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": worker.metadata(configmap_name(worker)),
        "data": {RUNNERS_KEY: runners_json(entries)},
    }


def configmap_entries(configmap: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The runners a live ConfigMap lists (what earlier runs of the operator published); [] if unreadable."""
    text = ((configmap or {}).get("data") or {}).get(RUNNERS_KEY) or ""
    try:
        runners = json.loads(text).get("runners") if text else []
    except (ValueError, AttributeError):
        return []
    return [r for r in runners or [] if isinstance(r, dict) and isinstance(r.get("label"), str)]


def uses_static_runners(worker: Worker) -> bool:
    return worker.mode is api.RegistrationMode.LIVE_RUNNER_STATIC
