"""In-memory views of the objects the operator reconciles, kept by kopf indexes.

Each child is stored slimmed to what reconciling and status need, keyed by (namespace, worker name), so a
reconcile reads the cluster from memory and a fleet of workers costs no extra GETs.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

Key = tuple[str, str]

_META_KEYS = (
    "name",
    "namespace",
    "uid",
    "generation",
    "resourceVersion",
    "labels",
    "annotations",
    "ownerReferences",
    "deletionTimestamp",
)


def slim_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    return {k: meta[k] for k in _META_KEYS if k in meta}


def slim_child(body: Mapping[str, Any]) -> dict[str, Any]:
    """A Deployment or Service as drift checks and status need it."""
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": slim_metadata(dict(body.get("metadata") or {})),
        "spec": dict(body.get("spec") or {}),
        "status": dict(body.get("status") or {}),
    }


def slim_configmap(body: Mapping[str, Any]) -> dict[str, Any]:
    """A ConfigMap (runners.json) as drift checks need it: its data."""
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": slim_metadata(dict(body.get("metadata") or {})),
        "data": dict(body.get("data") or {}),
    }


def slim_pod(body: Mapping[str, Any]) -> dict[str, Any]:
    status = body.get("status") or {}
    return {
        "metadata": slim_metadata(dict(body.get("metadata") or {})),
        "status": {
            k: status[k]
            for k in ("phase", "conditions", "containerStatuses", "initContainerStatuses", "podIP", "reason")
            if k in status
        },
    }


def first(store: Any) -> dict[str, Any] | None:
    """The single value an index holds for a key, if any."""
    for value in store or ():
        return value
    return None


def child(index: WorkerIndex, key: Key, name: str) -> dict[str, Any] | None:
    """The worker child of this name an index holds, if any."""
    for obj in index.get(key) or ():
        if obj["metadata"]["name"] == name:
            return obj
    return None


# One kopf index (a Mapping of keys to kopf Stores), or a dict of lists in tests.
Index = Mapping[Any, Collection[dict[str, Any]]]
WorkerIndex = Mapping[Key, Collection[dict[str, Any]]]


@dataclass
class Indexes:
    """The kopf indexes the reconciler reads from (bound on the first handler call)."""

    workers: WorkerIndex
    deployments: WorkerIndex
    services: WorkerIndex
    pods: WorkerIndex
    orchestrator_secrets: Index  # by namespace
    orchestrators: Index  # BYOCOrchestrators by name
    namespaces: Mapping[str, Collection[dict[str, str]]]  # namespace labels by name
    disruption_budgets: WorkerIndex
    network_policies: WorkerIndex
    configmaps: WorkerIndex
    token_secrets: WorkerIndex

    def of_kind(self, kind: str) -> WorkerIndex:
        """The index holding this worker child kind."""
        return {
            "Deployment": self.deployments,
            "Service": self.services,
            "PodDisruptionBudget": self.disruption_budgets,
            "NetworkPolicy": self.network_policies,
            "ConfigMap": self.configmaps,
            "Secret": self.token_secrets,
        }[kind]
