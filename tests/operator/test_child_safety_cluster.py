"""What a tenant's BYOCWorker cannot do through the operator, against a real kube-apiserver: take over objects
that happen to carry its children's names, or get pods the administrator did not allow."""

from __future__ import annotations

import base64
import json
import urllib.request
from typing import Any

import pytest
from byoc_testenv.orchestrator.process import OrchestratorProcess, orchestrator_spec
from byoc_testenv.polling import wait_for
from lightkube import ApiError, Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Event, Secret, Service
from lightkube.resources.networking_v1 import NetworkPolicy

from tests.support.operator import OperatorProcess, condition, get_worker, kubectl_apply, worker_manifest

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


def snapshot(kube: Client, namespace: str) -> dict[str, Any]:
    """What a takeover would change: labels, owners, spec, and whether the operator's field manager wrote it (the
    Deployment controller writes too: its resourceVersion moves anyway)."""
    out = {}
    for resource, name in ((NetworkPolicy, "default-deny"), (Service, "api"), (Deployment, "web")):
        obj = kube.get(resource, name, namespace=namespace).to_dict()
        meta = obj["metadata"]
        managers = sorted({m["manager"] for m in meta.get("managedFields") or [] if m.get("subresource") != "status"})
        out[name] = (meta.get("labels"), meta.get("ownerReferences"), obj.get("spec"), "byoc-operator" in managers)
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
    assert not [name for name, (*_, written) in before.items() if written]

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
    assert pod.containers[0].resources.requests["memory"] == "1Gi"


def test_a_byoc_worker_without_a_token_gets_a_generated_one(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess
) -> None:
    orch_secret = "orch-s3cret-generated-token-test"
    with OrchestratorProcess.start(secret=orch_secret) as orch:
        kubectl_apply(
            cluster,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "orch", "namespace": namespace},
                "data": {"secret": base64.b64encode(orch_secret.encode()).decode()},
            },
        )
        cap = f"gen-{namespace[-6:]}"
        spec = {
            "capability": {"name": cap},
            "gpu": {"count": 0},
            "registration": {"refreshSeconds": 5},
            "orchestrators": [orchestrator_spec(orch.url, "orch")],
        }
        kubectl_apply(cluster, worker_manifest("open", namespace, spec))
        secret = wait_for(lambda: present(kube, Secret, "open-token", namespace), 60, what="the generated token")
        token = base64.b64decode(secret.data["token"]).decode()
        assert len(token) >= 32
        obj = get_worker(kube, "open", namespace)
        assert [o.uid for o in secret.metadata.ownerReferences] == [obj["metadata"]["uid"]]

        # The orchestrator gets it with the registration, the router and the pods get it as a file.
        registered = wait_for(lambda: orchestrator_capabilities(orch.url).get(cap), 120, what="registered")
        assert registered["token"] == token
        for deployment, var in (("open", "BYOC_TOKEN_FILE"), ("open-router", "BYOC_ROUTER_TOKEN_FILE")):
            pod = wait_for(lambda d=deployment: present(kube, Deployment, d, namespace), 60, what=deployment)
            pod = pod.spec.template.spec
            assert [v.secret.secretName for v in pod.volumes if v.secret] == ["open-token"]
            assert var in {e.name for e in pod.containers[0].env}

        # Created once: later runs (the test operator resyncs every 2 s) never rewrite it.
        version = secret.metadata.resourceVersion
        wait_for(lambda: operator.metrics().get('byoc_operator_reconciles_total{result="ok"}', 0) > 0, 30, what="runs")
        runs = operator.metrics()['byoc_operator_reconciles_total{result="ok"}']
        wait_for(
            lambda: operator.metrics()['byoc_operator_reconciles_total{result="ok"}'] >= runs + 3, 60, what="resyncs"
        )
        assert kube.get(Secret, "open-token", namespace=namespace).metadata.resourceVersion == version
        assert token not in operator.log_path.read_text(errors="replace")

        # A token of the user's own replaces it, and the generated Secret goes.
        spec["registration"]["tokenSecretRef"] = {"name": "orch", "key": "secret"}
        kubectl_apply(cluster, worker_manifest("open", namespace, spec))
        wait_for(lambda: absent(kube, Secret, "open-token", namespace), 60, what="the generated token removed")


def present(kube: Client, resource: Any, name: str, namespace: str) -> Any:
    try:
        return kube.get(resource, name, namespace=namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        raise


def orchestrator_capabilities(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_test/capabilities", timeout=5) as resp:
        return json.loads(resp.read())["capabilities"]
