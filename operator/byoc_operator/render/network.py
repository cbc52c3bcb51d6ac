"""The NetworkPolicies of a worker's pods and its router's pods (spec.networkPolicy, on by default).

Each admits, on the one port its pods serve, only what the registration mode needs: a routed (BYOC) worker's pods
take calls from its router and the operator; the port that serves orchestrators or clients (the router's, or the
worker pods' in Live Runner mode or without registration) takes them from allowFrom, or from anyone when the spec
names no one (the operator cannot know where orchestrators are; stream calls through a router need the token).
Nothing else is admitted, so the sidecar port (/drain) is closed (the kubelet's probes and hooks are not
subject to NetworkPolicies).
"""

from __future__ import annotations

from typing import Any

from byoc_operator.render.router import router_selector
from byoc_operator.render.worker import ROUTER_PORT, Worker

# The chart's selector labels of the operator's pods (with app.kubernetes.io/instance: the release).
OPERATOR_NAME_LABEL = {"app.kubernetes.io/name": "byoc-operator"}
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def operator_peer(worker: Worker) -> list[dict[str, Any]]:
    """The operator's pods, by their namespace and release (a label alone could be put on any pod anywhere)."""
    namespace, instance = worker.policy.operator_namespace, worker.policy.operator_instance
    if not (namespace and instance):
        return []  # the operator runs outside the cluster: it reaches no pod network anyway
    return [
        {
            "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}},
            "podSelector": {"matchLabels": {**OPERATOR_NAME_LABEL, "app.kubernetes.io/instance": instance}},
        }
    ]


def _policy(
    worker: Worker, name: str, pods: dict[str, str], port: int, peers: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """peers None: any source on the port."""
    rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": port}]}
    if peers is not None:
        rule["from"] = peers
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": worker.metadata(name),
        "spec": {"podSelector": {"matchLabels": pods}, "policyTypes": ["Ingress"], "ingress": [rule]},
    }


def render_network_policies(worker: Worker) -> list[dict[str, Any]]:
    policy = worker.spec.network_policy
    if not policy.enabled:
        return []
    named = list(policy.allow_from) if policy.allow_from else None
    if worker.uses_router:
        workers = [{"podSelector": {"matchLabels": router_selector(worker)}}, *operator_peer(worker), *(named or [])]
        router = None if named is None else [*operator_peer(worker), *named]
        return [
            _policy(worker, worker.name, worker.selector_labels, worker.port, workers),
            _policy(worker, worker.router_name, router_selector(worker), ROUTER_PORT, router),
        ]
    pods = None if named is None else [*operator_peer(worker), *named]
    return [_policy(worker, worker.name, worker.selector_labels, worker.port, pods)]
