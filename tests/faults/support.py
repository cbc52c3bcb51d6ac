"""What the fault tests look at: the worker's status and Events as a user sees them, the orchestrator's table,
the children in the namespace, and every place a secret must never appear."""

from __future__ import annotations

import json
from typing import Any

from byoc_operator.registration import FINALIZER
from byoc_testenv import Cluster
from byoc_testenv.demo import capabilities, secret_manifest
from byoc_testenv.orchestrator.process import orchestrator_spec
from byoc_testenv.polling import wait_for
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Pod, Service

from tests.support.operator import OperatorProcess, condition, get_worker, kubectl_apply, worker_manifest

SECRET = "fault-orch-s3cret-NEVER-SHOWN-41c7"
KWOK_IMAGE = "registry.local/kwok-only-worker:1"  # not in the launcher's image map: kwok reports it Ready at once


def registration_spec(
    orch_url: str, capability: str, secret_name: str = "orch", *, replicas: int = 2, gpus: int = 0, **extra: Any
) -> dict[str, Any]:
    """A worker whose pods kwok runs (no process), registered with one orchestrator and refreshed every 5 s. Its
    routers are real processes that reach no worker process, so they can place nothing: it is registered with no
    free slot, and the pods' capacity shows in ``status.capacity`` (tests/e2e/test_capacity_e2e.py has real
    workers)."""
    return {
        "capability": {"name": capability},
        # the bundled runtime from an image the launcher does not run: no process, no drain sidecar
        "runtime": {"image": KWOK_IMAGE},
        "replicas": replicas,
        "sessionsPerPod": 2,
        "gpu": {"count": gpus},
        "registration": {"refreshSeconds": 5},
        "orchestrators": [orchestrator_spec(orch_url, secret_name)],
        **extra,
    }


def apply_secret(cluster: Cluster, namespace: str, name: str, value: str) -> None:
    cluster.apply(secret_manifest(name, value), namespace=namespace)


def apply_worker(cluster: Cluster, namespace: str, name: str, spec: dict[str, Any]) -> None:
    kubectl_apply(cluster, worker_manifest(name, namespace, spec))


def advertised(orch_url: str, capability: str) -> dict[str, Any] | None:
    """The orchestrator's entry for the capability (url, capacity, ...), or None."""
    return (capabilities(orch_url).get("capabilities") or {}).get(capability)


def registered(orch_url: str, capability: str) -> bool:
    return advertised(orch_url, capability) is not None


def registered_with(kube: Client, name: str, namespace: str, reason: str, timeout: float = 90) -> dict[str, Any]:
    """Wait until the Registered condition has this reason; returns the worker."""
    return wait_for(
        lambda: (o := get_worker(kube, name, namespace)) and condition(o, "Registered").get("reason") == reason and o,
        timeout,
        what=f"{namespace}/{name} Registered reason {reason}",
    )


def orchestrator_entry(obj: dict[str, Any], url: str) -> dict[str, Any]:
    (entry,) = [e for e in obj["status"].get("orchestrators") or [] if e["url"] == url]
    return entry


def events(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    """Events on the worker, oldest first, as `kubectl get events` shows them."""
    items = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    mine = [e for e in items if e["involvedObject"]["kind"] == "BYOCWorker" and e["involvedObject"]["name"] == name]
    return sorted(mine, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")


def wait_event(cluster: Cluster, namespace: str, name: str, type_: str, reason: str, text: str = "") -> dict:
    """The latest Event of this type and reason whose message contains `text` (waiting for it to be posted)."""
    found = wait_for(
        lambda: [
            e
            for e in events(cluster, namespace, name)
            if (e["type"], e["reason"]) == (type_, reason) and text in e["message"]
        ][-1:],
        30,
        what=f"a {type_} {reason} event mentioning {text!r}",
    )
    return found[0]


def secret_leaks(cluster: Cluster, namespace: str, operator: OperatorProcess, *secrets: str) -> list[str]:
    """Which of the secrets show up in the namespace's BYOCWorkers (spec and status), Events, or the operator log."""
    seen = cluster.kubectl("get", "byocworkers,events", "-n", namespace, "-o", "yaml").stdout
    seen += operator.log_path.read_text(errors="replace")
    return [s for s in secrets if s in seen]


def children(kube: Client, namespace: str) -> dict[str, list[str]]:
    """Names of every Deployment and Service in the namespace, and how many worker/router pods run."""
    pods = [p for p in kube.list(Pod, namespace=namespace) if not p.metadata.deletionTimestamp]
    return {
        "deployments": sorted(d.metadata.name for d in kube.list(Deployment, namespace=namespace)),
        "services": sorted(s.metadata.name for s in kube.list(Service, namespace=namespace)),
        "pods": sorted((p.metadata.labels or {}).get("app.kubernetes.io/component", "?") for p in pods),
    }


def router_children(name: str) -> dict[str, list[str]]:
    """What a BYOC worker with `replicas: 2` owns, once each: its pods, the router (two replicas), three Services."""
    return {
        "deployments": sorted([name, f"{name}-router"]),
        "services": sorted([name, f"{name}-pods", f"{name}-router"]),
        "pods": ["router", "router", "worker", "worker"],
    }


def finalizers(obj: dict[str, Any]) -> list[str]:
    return [f for f in obj["metadata"].get("finalizers") or [] if f == FINALIZER]
