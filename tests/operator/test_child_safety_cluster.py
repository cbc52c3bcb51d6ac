"""What a tenant's BYOCWorker cannot do through the operator, against a real kube-apiserver: take over objects
that happen to carry its children's names, or get pods the administrator did not allow."""

from __future__ import annotations

from typing import Any

import pytest
from byoc_testenv.polling import wait_for
from lightkube import ApiError, Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Event, Service
from lightkube.resources.networking_v1 import NetworkPolicy

from .conftest import OperatorProcess, condition, get_worker, kubectl_apply, worker_manifest

pytestmark = pytest.mark.cluster

PLATFORM_LABELS = {"team": "platform"}


def degraded(kube: Client, name: str, namespace: str, reason: str) -> dict[str, Any] | None:
    c = condition(get_worker(kube, name, namespace), "Degraded")
    return c if c.get("status") == "True" and c.get("reason") == reason else None


def warning_events(kube: Client, name: str, namespace: str, reason: str) -> list[Any]:
    events = kube.list(Event, namespace=namespace, fields={"involvedObject.name": name})
    return [e for e in events if e.type == "Warning" and e.reason == reason and e.involvedObject.kind == "BYOCWorker"]


def absent(kube: Client, resource: Any, name: str, namespace: str) -> bool:
    try:
        kube.get(resource, name, namespace=namespace)
    except ApiError as exc:
        return exc.status.code == 404
    return False


def platform_objects(cluster: Any, namespace: str) -> None:
    """Objects a tenant may not edit: a default-deny policy, a Service and a Deployment of the platform's."""
    manifests = [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "labels": PLATFORM_LABELS},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "api", "labels": PLATFORM_LABELS},
            "spec": {"selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": PLATFORM_LABELS},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "registry.local/web:1"}]},
                },
            },
        },
    ]
    for manifest in manifests:
        manifest["metadata"]["namespace"] = namespace
        kubectl_apply(cluster, manifest)


def snapshot(kube: Client, namespace: str) -> dict[str, tuple[Any, ...]]:
    out = {}
    for resource, name in ((NetworkPolicy, "default-deny"), (Service, "api"), (Deployment, "web")):
        obj = kube.get(resource, name, namespace=namespace)
        out[name] = (obj.metadata.resourceVersion, obj.metadata.labels, obj.metadata.ownerReferences)
    return out


def test_a_worker_named_after_an_existing_object_leaves_it_untouched(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess
) -> None:
    platform_objects(cluster, namespace)
    before = snapshot(kube, namespace)
    workers = {
        "default-deny": {"gpu": {"count": 0}, "networkPolicy": {}},  # the policy would be rewritten for its pods
        "api": {"gpu": {"count": 0}},  # the Service's selector would point at the tenant's pods
        "web": {"gpu": {"count": 0}},
        "neighbour": {"gpu": {"count": 0}},  # a worker whose names are free works as ever
    }
    for name, spec in workers.items():
        kubectl_apply(cluster, worker_manifest(name, namespace, spec))

    for name, taken in (
        ("default-deny", "NetworkPolicy default-deny"),
        ("api", "Service api"),
        ("web", "Deployment web"),
    ):
        c = wait_for(lambda n=name: degraded(kube, n, namespace, "NameConflict"), 60, what=f"{name} NameConflict")
        assert taken in c["message"] and "untouched" in c["message"], c["message"]
        assert condition(get_worker(kube, name, namespace), "Ready")["status"] == "False"
        wait_for(lambda n=name: warning_events(kube, n, namespace, "NameConflict"), 30, what=f"{name} event")
    wait_for(
        lambda: condition(get_worker(kube, "neighbour", namespace), "Ready").get("status") == "True",
        90,
        what="neighbour Ready",
    )

    # Nothing of the conflicting workers was created, and the platform's objects were not written to.
    assert absent(kube, Deployment, "default-deny", namespace) and absent(kube, Deployment, "api", namespace)
    assert absent(kube, Service, "web", namespace)
    assert snapshot(kube, namespace) == before

    # Deleting the workers deletes nothing of the platform's.
    for name in ("default-deny", "api", "web"):
        cluster.kubectl("delete", "-n", namespace, f"byocworker/{name}", "--wait=true")
    assert snapshot(kube, namespace) == before


def test_a_privileged_pod_is_refused_naming_the_field_and_the_admin_setting(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess
) -> None:
    spec = {
        "gpu": {"count": 0},
        "container": {"image": "registry.local/w:1", "securityContext": {"privileged": True, "runAsUser": 0}},
    }
    kubectl_apply(cluster, worker_manifest("root", namespace, spec))
    c = wait_for(lambda: degraded(kube, "root", namespace, "InvalidSpec"), 60, what="root InvalidSpec")
    assert "spec.container.securityContext.privileged" in c["message"]
    assert "security.allowPrivileged" in c["message"]
    assert absent(kube, Deployment, "root", namespace)
    wait_for(lambda: warning_events(kube, "root", namespace, "InvalidSpec"), 30, what="an InvalidSpec event")

    # Fixed spec: reconciled, with the hardening kept.
    spec["container"]["securityContext"] = {"runAsUser": 1000}
    kubectl_apply(cluster, worker_manifest("root", namespace, spec))
    dep = wait_for(
        lambda: not absent(kube, Deployment, "root", namespace) and kube.get(Deployment, "root", namespace=namespace),
        60,
        what="the Deployment",
    )
    pod = dep.spec.template.spec
    assert pod.securityContext.seccompProfile.type == "RuntimeDefault"
    ctx = pod.containers[0].securityContext
    assert ctx.runAsUser == 1000 and ctx.allowPrivilegeEscalation is False and ctx.capabilities.drop == ["ALL"]
    env = {e.name: e.value for e in pod.containers[0].env}
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert pod.containers[0].resources.limits["memory"] == "16Gi"
