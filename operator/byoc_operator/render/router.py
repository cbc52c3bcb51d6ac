"""The session router (BYOC protocol): an orchestrator keeps one URL per capability and does not enforce
capacity, so that URL points at a router that places each stream on a worker pod with a free slot.

Children: a headless Service resolving to the ready worker pods, the router Deployment, and its Service.
"""

from __future__ import annotations

from typing import Any

from byoc_operator.render import security
from byoc_operator.render.token import token_volume, uses_token, with_token
from byoc_operator.render.worker import LABEL_COMPONENT, LABEL_WORKER, ROUTER_PORT, Worker

ROUTER_REPLICAS = 2  # two, so a router restart or node loss never takes the registered URL down


def router_labels(worker: Worker) -> dict[str, str]:
    return {**worker.labels, LABEL_COMPONENT: "router"}


def router_selector(worker: Worker) -> dict[str, str]:
    return {LABEL_WORKER: worker.name, LABEL_COMPONENT: "router"}


def render_pods_service(worker: Worker) -> dict[str, Any]:
    """Headless: its DNS name resolves to every ready worker pod, which is how the router finds them."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": worker.metadata(worker.pods_service_name),
        "spec": {
            "clusterIP": "None",
            "selector": worker.selector_labels,
            "ports": [{"name": "http", "port": worker.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def render_router_deployment(worker: Worker) -> dict[str, Any]:
    labels = router_labels(worker)
    meta = worker.metadata(worker.router_name)
    meta["labels"] = labels
    container = {
        "name": "router",
        "image": worker.edge_image,
        "command": ["byoc-router"],
        "args": [
            f"--port={ROUTER_PORT}",
            f"--pods-dns={worker.pods_service_name}.{worker.namespace}.svc",
            f"--pod-port={worker.port}",
            f"--sessions-per-pod={worker.spec.sessions_per_pod}",
        ],
        "env": [security.NO_GPUS_ENV],
        "ports": [{"name": "http", "containerPort": ROUTER_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10},
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": security.hardened(read_only_root=True),
    }
    pod: dict[str, Any] = {
        "containers": [with_token(worker, container, "BYOC_ROUTER_")],
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": dict(security.ROUTER_POD_SECURITY_CONTEXT),
    }
    if uses_token(worker):
        pod["volumes"] = [token_volume(worker)]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": ROUTER_REPLICAS,
            "selector": {"matchLabels": router_selector(worker)},
            "template": {
                "metadata": {"labels": labels},
                "spec": pod,
            },
        },
    }


def render_router_service(worker: Worker) -> dict[str, Any]:
    """The router's Service, of the type ``registration.expose`` asks for (what orchestrators reach)."""
    expose = worker.spec.registration.expose
    meta = worker.metadata(worker.router_name)
    meta["labels"] = router_labels(worker)
    if expose.annotations:
        meta["annotations"] = dict(expose.annotations)
    spec: dict[str, Any] = {
        "type": expose.type,
        "selector": router_selector(worker),
        "ports": [{"name": "http", "port": ROUTER_PORT, "targetPort": "http", "protocol": "TCP"}],
    }
    if expose.type == "LoadBalancer" and expose.load_balancer_source_ranges:
        spec["loadBalancerSourceRanges"] = list(expose.load_balancer_source_ranges)
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}
