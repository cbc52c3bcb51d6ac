"""Placement of the worker pods: topology spread and the PodDisruptionBudget."""

from __future__ import annotations

from typing import Any

from byoc_operator import api
from byoc_operator.render.worker import Worker

HOSTNAME_LABEL = "kubernetes.io/hostname"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"


def topology_spread(worker: Worker) -> list[dict[str, Any]]:
    """spec.scheduling.spread as TopologySpreadConstraints, then the user's own (selector defaulted to the pods)."""
    scheduling = worker.spec.scheduling or api.Scheduling()
    selector = {"matchLabels": worker.selector_labels}
    out = []
    spread = scheduling.spread
    if spread:
        for enabled, key in ((spread.across_nodes, HOSTNAME_LABEL), (spread.across_gpu_products, GPU_PRODUCT_LABEL)):
            if enabled:
                out.append(
                    {
                        "maxSkew": 1,
                        "topologyKey": key,
                        "whenUnsatisfiable": spread.when_unsatisfiable,
                        "labelSelector": selector,
                        # Only pods of the current rollout count, so a rollout does not fight the spread.
                        "matchLabelKeys": ["pod-template-hash"],
                    }
                )
    for constraint in scheduling.topology_spread_constraints or []:
        out.append({"labelSelector": selector, **constraint})
    return out


def render_disruption_budget(worker: Worker) -> dict[str, Any] | None:
    budget = worker.spec.disruption_budget
    if budget is None:
        return None
    spec: dict[str, Any] = {"selector": {"matchLabels": worker.selector_labels}}
    if budget.min_available is not None:
        spec["minAvailable"] = budget.min_available
    else:
        spec["maxUnavailable"] = budget.max_unavailable
    # A crash-looping pod must not block a node drain forever.
    spec["unhealthyPodEvictionPolicy"] = "AlwaysAllow"
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": worker.metadata(worker.name),
        "spec": spec,
    }
