"""Worker pods in trouble: a rollout whose new pods crash-loop (kwok's simulated kubelet status), and a node
removed with worker pods on it. The status says what is wrong while it is wrong, the advertised capacity follows
the pods that can take streams, and everything comes back once the cause is gone, with no pod left over."""

from __future__ import annotations

import pytest
from byoc_testenv import Cluster, GPUNodeGroup
from byoc_testenv.orchestrator import OrchestratorProcess
from byoc_testenv.polling import wait_for
from byoc_testenv.stages import CRASH_LOOP, SIMULATE_ANNOTATION
from lightkube import Client
from lightkube.resources.core_v1 import Pod

from tests.support.operator import OperatorProcess, condition, get_worker

from .support import (
    SECRET,
    advertised,
    apply_secret,
    apply_worker,
    orchestrator_entry,
    registration_spec,
    wait_event,
)

pytestmark = pytest.mark.cluster


def capacity_at(orch_url: str, capability: str) -> int | None:
    """Free slots registered: 0 here, the routers reach no worker process (support.py); None when not registered.
    What follows the pods is ``status.capacity``."""
    return (advertised(orch_url, capability) or {}).get("capacity")


def worker_pods(kube: Client, namespace: str) -> list[Pod]:
    return [
        p
        for p in kube.list(Pod, namespace=namespace, labels={"app.kubernetes.io/component": "worker"})
        if not p.metadata.deletionTimestamp
    ]


def status_is(kube: Client, name: str, namespace: str, **want: object) -> dict | None:
    """The worker once its status shows every `want`: conditions by type -> reason, other keys -> status value."""
    obj = get_worker(kube, name, namespace)
    for key, value in want.items():
        seen = condition(obj, key).get("reason") if key[0].isupper() else obj["status"].get(key)
        if seen != value:
            return None
    return obj


def test_crash_looping_rollout_is_reported_and_a_fix_recovers(
    faults_cluster: Cluster, kube: Client, ns: str, operator: OperatorProcess, orch: OrchestratorProcess
) -> None:
    cap = "fault-crash"
    apply_secret(faults_cluster, ns, "orch", SECRET)
    apply_worker(faults_cluster, ns, "w", registration_spec(orch.url, cap))
    wait_for(lambda: capacity_at(orch.url, cap) == 0, 90, what="registered")

    # A new revision whose pods crash: the rollout (maxUnavailable 1, no surge) takes one old pod down for it.
    apply_worker(
        faults_cluster, ns, "w", registration_spec(orch.url, cap, podAnnotations={SIMULATE_ANNOTATION: CRASH_LOOP})
    )
    obj = wait_for(
        lambda: status_is(kube, "w", ns, Degraded="CrashLoop", capacity=2, readyReplicas=1),
        120,
        what="Degraded CrashLoop at capacity 2",
    )
    assert condition(obj, "Ready")["status"] == "False" and condition(obj, "Degraded")["status"] == "True"
    wait_event(faults_cluster, ns, "w", "Warning", "CrashLoop")
    # Still registered through the bad rollout (streams may run on the pod still serving).
    obj = wait_for(lambda: status_is(kube, "w", ns, Registered="AllRegistered"), 30, what="still registered")
    assert orchestrator_entry(obj, orch.url)["registered"] and capacity_at(orch.url, cap) == 0

    apply_worker(faults_cluster, ns, "w", registration_spec(orch.url, cap))  # the fix: back to a working revision
    obj = wait_for(lambda: status_is(kube, "w", ns, Ready="AllPodsReady", capacity=4), 180, what="Ready again")
    assert condition(obj, "Degraded")["status"] == "False"
    pods = wait_for(lambda: len(p := worker_pods(kube, ns)) == 2 and p, 60, what="two worker pods")
    assert not [p.metadata.name for p in pods if SIMULATE_ANNOTATION in (p.metadata.annotations or {})]


def test_node_removed_with_worker_pods_is_reported_and_capacity_follows(
    faults_cluster: Cluster, kube: Client, ns: str, operator: OperatorProcess, orch: OrchestratorProcess
) -> None:
    cap = "fault-node"
    apply_secret(faults_cluster, ns, "orch", SECRET)
    # One GPU per pod on 1-GPU nodes: the two pods sit on two nodes, and no GPU is spare.
    apply_worker(faults_cluster, ns, "w", registration_spec(orch.url, cap, gpus=1))
    wait_for(lambda: capacity_at(orch.url, cap) == 0, 90, what="registered")
    pods = worker_pods(kube, ns)
    nodes = sorted(p.spec.nodeName for p in pods)
    assert len(set(nodes)) == 2, nodes

    lost = nodes[0]
    faults_cluster.delete_node(lost)
    # The control plane's pod GC deletes the pods of a node that no longer exists (after a ~40 s quarantine);
    # the replacement pod has no GPU to go to.
    obj = wait_for(
        lambda: status_is(kube, "w", ns, Degraded="InsufficientGPU", capacity=2, readyReplicas=1),
        180,
        what="Degraded InsufficientGPU at capacity 2",
    )
    assert condition(obj, "Ready")["status"] == "False" and "nvidia.com/gpu" in condition(obj, "Degraded")["message"]
    assert capacity_at(orch.url, cap) == 0
    assert not [p.metadata.name for p in worker_pods(kube, ns) if p.spec.nodeName == lost]

    faults_cluster.add_nodes(GPUNodeGroup("gpu", count=1, gpus_per_node=1))  # a replacement node joins
    obj = wait_for(lambda: status_is(kube, "w", ns, Ready="AllPodsReady", capacity=4), 150, what="Ready again")
    assert condition(obj, "Degraded")["status"] == "False"
    assert orchestrator_entry(obj, orch.url)["registered"]
    pods = worker_pods(kube, ns)
    assert len(pods) == 2 and lost not in {p.spec.nodeName for p in pods}
