"""Placement and network children on the real control plane: created when asked for, removed when dropped."""

from __future__ import annotations

from typing import Any

import pytest
from byoc_testenv.polling import wait_for
from lightkube import ApiError, Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.networking_v1 import NetworkPolicy
from lightkube.resources.policy_v1 import PodDisruptionBudget

from tests.support.operator import OperatorProcess, kubectl_apply, worker_manifest

pytestmark = pytest.mark.cluster


def absent(kube: Client, resource: Any, name: str, namespace: str) -> bool:
    try:
        kube.get(resource, name, namespace=namespace)
    except ApiError as exc:
        return exc.status.code == 404
    return False


def present(kube: Client, resource: Any, name: str, namespace: str) -> Any:
    try:
        return kube.get(resource, name, namespace=namespace)
    except ApiError:
        return None


def test_budget_policy_and_spread_follow_the_spec(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess
) -> None:
    spec = {
        "replicas": 2,
        "disruptionBudget": {"maxUnavailable": 1},
        "networkPolicy": {"allowFrom": [{"ipBlock": {"cidr": "127.0.0.0/8"}}]},
        # A class of its own: system ones need the administrator's consent (tests/operator/test_pod_policy.py).
        "scheduling": {"spread": {"acrossNodes": True}, "priorityClassName": "byoc-test-live"},
    }
    priority = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "byoc-test-live"}}
    kubectl_apply(cluster, {**priority, "value": 1000})
    kubectl_apply(cluster, worker_manifest("placed", namespace, spec))

    pdb = wait_for(lambda: present(kube, PodDisruptionBudget, "placed", namespace), 60, what="the PDB")
    assert pdb.spec.maxUnavailable == 1
    assert pdb.metadata.ownerReferences[0].name == "placed"
    # The disruption controller sees the budget's pods: two expected, eviction of one allowed once ready.
    wait_for(
        lambda: (
            (present(kube, PodDisruptionBudget, "placed", namespace).status or {})
            and present(kube, PodDisruptionBudget, "placed", namespace).status.expectedPods == 2
        ),
        90,
        what="the PDB counting the pods",
    )
    policy = wait_for(lambda: present(kube, NetworkPolicy, "placed", namespace), 60, what="the NetworkPolicy")
    assert policy.spec.ingress[0].from_[-1].ipBlock.cidr == "127.0.0.0/8"
    template = kube.get(Deployment, "placed", namespace=namespace).spec.template.spec
    assert template.topologySpreadConstraints[0].topologyKey == "kubernetes.io/hostname"
    assert template.priorityClassName == "byoc-test-live"

    # Dropping the options removes the children and the constraints (NetworkPolicies are on unless switched off).
    kubectl_apply(cluster, worker_manifest("placed", namespace, {"replicas": 2, "networkPolicy": {"enabled": False}}))
    wait_for(lambda: absent(kube, PodDisruptionBudget, "placed", namespace), 60, what="the PDB removed")
    wait_for(lambda: absent(kube, NetworkPolicy, "placed", namespace), 60, what="the NetworkPolicy removed")
    wait_for(
        lambda: not kube.get(Deployment, "placed", namespace=namespace).spec.template.spec.topologySpreadConstraints,
        60,
        what="the spread constraints removed",
    )
