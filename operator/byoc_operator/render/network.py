"""The optional NetworkPolicy: only this worker's router, the operator and named peers reach the worker pods."""

from __future__ import annotations

from typing import Any

from byoc_operator.render.router import router_selector
from byoc_operator.render.worker import Worker

# The chart labels the operator's pods so; the operator counts sessions on the pods for the autoscaler.
OPERATOR_POD_LABELS = {"app.kubernetes.io/name": "byoc-operator"}


def render_network_policy(worker: Worker) -> dict[str, Any] | None:
    policy = worker.spec.network_policy
    if policy is None:
        return None
    peers: list[dict[str, Any]] = [
        {"podSelector": {"matchLabels": router_selector(worker)}},
        {"namespaceSelector": {}, "podSelector": {"matchLabels": OPERATOR_POD_LABELS}},
        *(policy.allow_from or []),
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": worker.metadata(worker.name),
        "spec": {
            "podSelector": {"matchLabels": worker.selector_labels},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": peers, "ports": [{"protocol": "TCP", "port": worker.port}]}],
        },
    }
