"""The operator against a real kube-apiserver, scheduler and controller-manager with fake GPU nodes (kwok)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from byoc_testenv.polling import wait_for
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Event, Pod, Service

from tests.support.operator import BYOCWorker, OperatorProcess, condition, get_worker, kubectl_apply, worker_manifest

pytestmark = pytest.mark.cluster


def ready(kube: Client, name: str, ns: str) -> dict[str, Any] | None:
    obj = get_worker(kube, name, ns)
    return obj if condition(obj, "Ready").get("status") == "True" else None


def test_apply_runs_gpu_pods_and_reports_ready(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess
) -> None:
    spec = {"replicas": 2, "sessionsPerPod": 3, "gpu": {"count": 1, "product": "NVIDIA-H100-80GB-HBM3"}}
    kubectl_apply(cluster, worker_manifest("w1", namespace, spec))
    obj = wait_for(lambda: ready(kube, "w1", namespace), 90, what="w1 Ready")
    status = obj["status"]
    assert status["readyReplicas"] == 2 and status["capacity"] == 6 and status["ready"] == "2/2"
    assert status["endpoint"] == f"http://w1.{namespace}.svc:8000"
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert condition(obj, "Degraded")["status"] == "False"

    pods = list(kube.list(Pod, namespace=namespace, labels={"byoc.livepeer.org/worker": "w1"}))
    assert len(pods) == 2
    for pod in pods:
        node = cluster.kubectl("get", "node", pod.spec.nodeName, "-o", "json").stdout
        labels = json.loads(node)["metadata"]["labels"]
        assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
        assert pod.spec.containers[0].resources.limits["nvidia.com/gpu"] == "1"

    svc = kube.get(Service, "w1", namespace=namespace)
    assert svc.metadata.ownerReferences[0].uid == obj["metadata"]["uid"]

    # kubectl shows the printer columns users read
    table = cluster.kubectl("get", "byocworkers", "-n", namespace, "-o", "wide").stdout
    assert "live-video-to-video" in table and "2/2" in table and "AllPodsReady" in table

    events = wait_for(
        lambda: [
            e
            for e in kube.list(Event, namespace=namespace, fields={"involvedObject.name": "w1"})
            if e.reason == "Ready"
        ],
        30,
        what="a Ready event",
    )
    assert events[0].involvedObject.kind == "BYOCWorker"


def test_kubectl_scale_changes_pods_and_capacity(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess
) -> None:
    kubectl_apply(cluster, worker_manifest("scaled", namespace, {"replicas": 1, "sessionsPerPod": 2}))
    wait_for(lambda: ready(kube, "scaled", namespace), 90, what="Ready at 1 replica")
    cluster.kubectl("scale", "-n", namespace, "byocworker/scaled", "--replicas=3")
    obj = wait_for(
        lambda: (o := ready(kube, "scaled", namespace)) and o["status"]["readyReplicas"] == 3 and o,
        90,
        what="Ready at 3 replicas",
    )
    assert obj["status"]["capacity"] == 6
    assert kube.get(Deployment, "scaled", namespace=namespace).spec.replicas == 3
    scale = json.loads(
        cluster.kubectl(
            "get", "--raw", f"/apis/byoc.livepeer.org/v1alpha1/namespaces/{namespace}/byocworkers/scaled/scale"
        ).stdout
    )
    assert (
        scale["status"]["selector"] == "byoc.livepeer.org/worker=scaled,app.kubernetes.io/component=worker"
        and scale["status"]["replicas"] == 3
    )


def test_not_enough_gpus_shows_the_schedulers_reason(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess
) -> None:
    kubectl_apply(cluster, worker_manifest("greedy", namespace, {"gpu": {"count": 16}}))

    def degraded() -> dict[str, Any] | None:
        c = condition(get_worker(kube, "greedy", namespace), "Degraded")
        return c if c.get("reason") == "InsufficientGPU" else None

    c = wait_for(degraded, 90, what="InsufficientGPU")
    assert c["status"] == "True" and "nvidia.com/gpu" in c["message"]
    obj = get_worker(kube, "greedy", namespace)
    assert condition(obj, "Ready")["status"] == "False" and obj["status"]["capacity"] == 0


@pytest.mark.parametrize(("simulate", "reason"), [("image-pull-error", "ImagePullError"), ("crash-loop", "CrashLoop")])
def test_bad_image_and_crash_loop_have_their_own_reasons(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess, simulate: str, reason: str
) -> None:
    spec = {"gpu": {"count": 0}, "podAnnotations": {"byoc-testenv/simulate": simulate}}
    kubectl_apply(cluster, worker_manifest("broken", namespace, spec))
    c = wait_for(
        lambda: (c := condition(get_worker(kube, "broken", namespace), "Degraded")) and c.get("reason") == reason and c,
        90,
        what=reason,
    )
    assert c["status"] == "True"
    assert condition(get_worker(kube, "broken", namespace), "Ready")["status"] == "False"
    warnings = wait_for(
        lambda: [
            e
            for e in kube.list(Event, namespace=namespace, fields={"involvedObject.name": "broken"})
            if e.type == "Warning" and e.reason == reason
        ],
        30,
        what="a Warning event",
    )
    assert warnings


def test_delete_garbage_collects_children(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess
) -> None:
    kubectl_apply(cluster, worker_manifest("temp", namespace, {"gpu": {"count": 0}}))
    wait_for(lambda: ready(kube, "temp", namespace), 90, what="Ready")
    cluster.kubectl("delete", "-n", namespace, "byocworker/temp", "--wait=true")
    wait_for(
        lambda: (
            not list(kube.list(Deployment, namespace=namespace))
            and not list(kube.list(Service, namespace=namespace))
            and not list(kube.list(Pod, namespace=namespace))
        ),
        90,
        what="children garbage-collected",
    )


def test_drift_is_repaired(cluster: Any, kube: Client, namespace: str, operator: OperatorProcess) -> None:
    kubectl_apply(cluster, worker_manifest("drifty", namespace, {"replicas": 2, "gpu": {"count": 0}}))
    wait_for(lambda: ready(kube, "drifty", namespace), 90, what="Ready")
    old_svc_uid = kube.get(Service, "drifty", namespace=namespace).metadata.uid
    cluster.kubectl("delete", "-n", namespace, "service/drifty")
    cluster.kubectl("scale", "-n", namespace, "deployment/drifty", "--replicas=5")
    cluster.kubectl("set", "image", "-n", namespace, "deployment/drifty", "worker=evil/image:1")
    wait_for(
        lambda: kube.get(Service, "drifty", namespace=namespace).metadata.uid != old_svc_uid,
        30,
        what="service recreated",
    )

    def restored() -> bool:
        dep = kube.get(Deployment, "drifty", namespace=namespace)
        return (
            dep.spec.replicas == 2 and dep.spec.template.spec.containers[0].image == "registry.local/byoc-runtime:test"
        )

    wait_for(restored, 30, what="deployment restored")
    wait_for(lambda: ready(kube, "drifty", namespace), 90, what="Ready again")


def test_idle_reconcile_writes_nothing(cluster: Any, kube: Client, namespace: str, operator: OperatorProcess) -> None:
    kubectl_apply(cluster, worker_manifest("quiet", namespace, {"gpu": {"count": 0}}))
    wait_for(lambda: ready(kube, "quiet", namespace), 90, what="Ready")

    def versions() -> tuple[str, ...]:
        return (
            kube.get(BYOCWorker, "quiet", namespace=namespace).metadata.resourceVersion,
            kube.get(Deployment, "quiet", namespace=namespace).metadata.resourceVersion,
            kube.get(Service, "quiet", namespace=namespace).metadata.resourceVersion,
        )

    import time

    def writes() -> float:
        return sum(v for k, v in operator.metrics().items() if k.startswith("byoc_operator_api_writes_total"))

    def reconciles() -> float:
        return operator.metrics().get('byoc_operator_reconciles_total{result="ok"}', 0.0)

    # The counters are operator-wide: wait until earlier tests' workers are gone (their namespaces are being
    # torn down), so that this worker is the only one left to reconcile.
    wait_for(
        lambda: [w.metadata.name for w in kube.list(BYOCWorker, namespace="*")] == ["quiet"],
        120,
        what="no other BYOCWorker in the cluster",
    )

    def quiet_pass() -> bool:
        """One reconcile pass during which neither the objects nor the operator's writes moved."""
        v, w, r = versions(), writes(), reconciles()
        wait_for(lambda: reconciles() > r, 10, what="a reconcile pass")
        return versions() == v and writes() == w

    # The last pod/Deployment status updates have settled (instead of a fixed pause).
    wait_for(quiet_pass, 60, what="a reconcile pass that changes nothing")
    before, writes_before, runs_before = versions(), writes(), reconciles()
    time.sleep(7)  # the test operator resyncs every 2 s: several idle passes
    assert versions() == before
    assert reconciles() > runs_before  # it did look again...
    assert writes() == writes_before  # ...and wrote nothing


def test_operator_restart_converges_without_duplicates(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess
) -> None:
    kubectl_apply(cluster, worker_manifest("phoenix", namespace, {"replicas": 1, "gpu": {"count": 0}}))
    wait_for(lambda: ready(kube, "phoenix", namespace), 90, what="Ready")
    operator.kill()
    try:
        cluster.kubectl("scale", "-n", namespace, "byocworker/phoenix", "--replicas=2")
        kubectl_apply(cluster, worker_manifest("born-while-down", namespace, {"gpu": {"count": 0}}))
    finally:
        operator.start()
    wait_for(
        lambda: (o := ready(kube, "phoenix", namespace)) and o["status"]["readyReplicas"] == 2,
        90,
        what="phoenix at 2 replicas",
    )
    wait_for(lambda: ready(kube, "born-while-down", namespace), 90, what="the worker created while down")
    assert [d.metadata.name for d in kube.list(Deployment, namespace=namespace)] == ["born-while-down", "phoenix"]
    assert len(list(kube.list(Service, namespace=namespace))) == 2


REFUSED_TERM = {"matchExpressions": [{"key": "zone", "operator": "Near", "values": ["a"]}]}
UNREFUSABLE = [
    # Passes the CRD schema (affinity is free-form) but the API server refuses the Deployment it renders.
    (
        {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [REFUSED_TERM]}}},
        "Deployment bad was refused",
    ),
    # Not even an Affinity: the client cannot build the Deployment, and says where.
    ({"nodeAffinity": "zone-a"}, "Deployment bad cannot be built from the spec: Expected `object | null`"),
]


@pytest.mark.parametrize("affinity,message", UNREFUSABLE, ids=["refused", "unbuildable"])
def test_an_unreconcilable_object_is_degraded_and_others_carry_on(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess, affinity: dict[str, Any], message: str
) -> None:
    bad = {"gpu": {"count": 0}, "scheduling": {"affinity": affinity}}
    kubectl_apply(cluster, worker_manifest("bad", namespace, bad))
    kubectl_apply(cluster, worker_manifest("good", namespace, {"gpu": {"count": 0}}))
    c = wait_for(
        lambda: (
            (c := condition(get_worker(kube, "bad", namespace), "Degraded"))
            and c.get("reason") == "ReconcileError"
            and c
        ),
        60,
        what="bad Degraded",
    )
    assert message in c["message"]
    wait_for(lambda: ready(kube, "good", namespace), 90, what="good Ready")
    assert operator.proc is not None and operator.proc.poll() is None
