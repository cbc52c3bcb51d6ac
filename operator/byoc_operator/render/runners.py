"""Live Runner static mode: the runners.json an orchestrator started with ``-liveRunnerConfig`` reads, as a
ConfigMap, one runner per ready worker pod. Pure.

Format (go-livepeer ``ai/runner/live_runner.go``, ``StaticLiveRunnerConfigEntry``): ``{"runners": [{label, routing,
runner_url, health_url, healthy_status_code, app, mode, capacity, price_info}]}``. Entries are upserted by label
and never removed; the orchestrator polls each ``health_url`` every 5 s and one failed check makes the runner
unavailable.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from byoc_operator import api
from byoc_operator.render.worker import Worker

RUNNERS_KEY = "runners.json"
# A health status no server answers with: upserting a gone pod's entry expecting it makes the orchestrator mark the
# runner unavailable at once and keeps it so even when a later pod gets the same IP (entries are never removed).
RETIRED_STATUS_CODE = 599


def configmap_name(worker: Worker) -> str:
    return f"{worker.name}-runners"


def runner_label(namespace: str, pod_name: str) -> str:
    """Unique on an orchestrator that several namespaces share; routing by label makes it the session route
    (``/apps/{label}/session``), so it may not contain '/'."""
    return f"{pod_name}.{namespace}"


def price_info(pricing: api.Pricing) -> dict[str, str] | None:
    """Live Runner prices are USD only (``normalizeLiveRunnerPriceInfo``); other currencies are not advertised
    here (off-chain orchestrators ignore the price)."""
    if pricing.currency.lower() != "usd" or pricing.price_per_unit <= 0:
        return None
    price = Decimal(pricing.price_per_unit) / Decimal(pricing.price_scaling)
    return {"price": format(price.normalize(), "f"), "currency": "usd", "unit": "hour"}


def runner_entry(worker: Worker, pod_name: str, pod_ip: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "label": runner_label(worker.namespace, pod_name),
        "routing": "label",
        "runner_url": f"http://{pod_ip}:{worker.port}",
        "health_url": worker.spec.probes.path,  # relative: joined to runner_url by the orchestrator
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


def ready_pod_addresses(pods: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(name, IP) of the pods that are Ready, not terminating, and have an IP."""
    out = []
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        if ready and status.get("podIP") and not meta.get("deletionTimestamp"):
            out.append((meta["name"], status["podIP"]))
    return sorted(out)


def runner_entries(worker: Worker, pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [runner_entry(worker, name, ip) for name, ip in ready_pod_addresses(pods)]


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
    reg = worker.spec.registration
    return reg.protocol == "live-runner" and reg.live_runner_mode == "static"
