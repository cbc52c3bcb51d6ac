"""BYOC capability registration against the test orchestrator (testenv/byoc_testenv/orchestrator), driven by the
operator on the real control plane. go-livepeer's orchestrator cannot be built here (its module versions are
not served, and it links FFmpeg), so the peer is the documented-contract test orchestrator."""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from byoc_testenv.orchestrator.process import OrchestratorProcess
from byoc_testenv.polling import wait_for
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Pod, Service

from .conftest import OperatorProcess, condition, get_worker, kubectl_apply, worker_manifest

pytestmark = pytest.mark.cluster

SECRET = "orch-s3cret-DO-NOT-LEAK-7f1c"


@pytest.fixture(scope="module")
def orch() -> Iterator[OrchestratorProcess]:
    with OrchestratorProcess.start(secret=SECRET) as proc:
        yield proc


def capabilities(orch: OrchestratorProcess) -> dict[str, Any]:
    with urllib.request.urlopen(f"{orch.url}/_test/capabilities", timeout=5) as resp:
        return json.loads(resp.read())["capabilities"]


def secret_manifest(name: str, namespace: str, data: dict[str, str], labels: dict[str, str] | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def spec(orch_url: str, capability: str, secret_name: str = "orch", **extra: Any) -> dict[str, Any]:
    return {
        "capability": {"name": capability},
        "replicas": 2,
        "sessionsPerPod": 2,
        "gpu": {"count": 0},
        "pricing": {"pricePerUnit": 1200, "priceScaling": 1000, "currency": "wei"},
        "registration": {"refreshSeconds": 5},
        "orchestrators": [{"url": orch_url, "secretRef": {"name": secret_name}}],
        **extra,
    }


def advertised(orch: OrchestratorProcess, capability: str) -> int | None:
    cap = capabilities(orch).get(capability)
    return cap["capacity"] if cap else None


def test_registration_follows_scaling_and_deletion(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess, orch: OrchestratorProcess
) -> None:
    cap = "reg-follows"
    kubectl_apply(cluster, secret_manifest("orch", namespace, {"secret": SECRET}))
    kubectl_apply(cluster, worker_manifest("fleet", namespace, spec(orch.url, cap)))

    wait_for(lambda: advertised(orch, cap) == 4, 90, what="capacity 4 advertised")
    entry = capabilities(orch)[cap]
    assert entry["url"] == f"http://fleet-router.{namespace}.svc:8080"
    assert (entry["price_per_unit"], entry["price_scaling"], entry["currency"]) == (1200, 1000, "wei")
    obj = wait_for(
        lambda: (
            (o := get_worker(kube, "fleet", namespace))
            and condition(o, "Registered").get("status") == "True"
            and o["status"]["orchestrators"][0]["capacity"] == 4
            and o
        ),
        30,
        what="Registered at capacity 4",
    )
    (status_entry,) = obj["status"]["orchestrators"]
    assert status_entry["registered"] is True and status_entry["since"] and "lastError" not in status_entry
    assert "byoc.livepeer.org/registration" in obj["metadata"]["finalizers"]
    # the router the URL points at, and the headless Service it finds pods through
    assert kube.get(Deployment, "fleet-router", namespace=namespace).spec.replicas == 2
    assert kube.get(Service, "fleet-pods", namespace=namespace).spec.clusterIP == "None"

    cluster.kubectl("scale", "-n", namespace, "byocworker/fleet", "--replicas=3")
    wait_for(lambda: advertised(orch, cap) == 6, 60, what="capacity 6 after scaling up")

    cluster.kubectl("scale", "-n", namespace, "byocworker/fleet", "--replicas=0")
    wait_for(lambda: advertised(orch, cap) is None, 60, what="unregistered at capacity 0")
    wait_for(
        lambda: condition(get_worker(kube, "fleet", namespace), "Registered").get("reason") == "NoCapacity",
        30,
        what="Registered=False NoCapacity",
    )

    cluster.kubectl("scale", "-n", namespace, "byocworker/fleet", "--replicas=1")
    wait_for(lambda: advertised(orch, cap) == 2, 60, what="registered again at capacity 2")

    cluster.kubectl("delete", "-n", namespace, "byocworker/fleet", "--timeout=60s")
    assert advertised(orch, cap) is None
    history = [h["op"] if "op" in h else h for h in capabilities(orch).get(cap, {}).get("history", [])]
    assert history == []  # the capability is gone from the table

    events = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    leaking = [e for e in events if SECRET in json.dumps(e)]
    assert leaking == []
    reasons = {e["reason"] for e in events if e["involvedObject"]["kind"] == "BYOCWorker"}
    assert {"Registered", "Unregistered"} <= reasons


def test_wrong_secret_is_reported_without_leaking_and_rotation_recovers(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess, orch: OrchestratorProcess
) -> None:
    cap = "reg-rotate"
    wrong = "wrong-secret-value-3b9d"
    kubectl_apply(cluster, secret_manifest("orch", namespace, {"secret": wrong}))
    kubectl_apply(cluster, worker_manifest("rot", namespace, spec(orch.url, cap)))
    c = wait_for(
        lambda: (
            (c := condition(get_worker(kube, "rot", namespace), "Registered"))
            and c.get("reason") == "RegistrationFailed"
            and c
        ),
        90,
        what="RegistrationFailed",
    )
    assert "invalid authorization" in c["message"]
    dump = cluster.kubectl("get", "byocworker", "rot", "-n", namespace, "-o", "yaml").stdout
    dump += cluster.kubectl("get", "events", "-n", namespace, "-o", "yaml").stdout
    assert wrong not in dump and SECRET not in dump and wrong not in operator.log_tail(100000)

    # rotate the Secret to the right value: the periodic refresh picks it up
    kubectl_apply(cluster, secret_manifest("orch", namespace, {"secret": SECRET}))
    wait_for(lambda: advertised(orch, cap) == 4, 60, what="registered after rotation")
    wait_for(
        lambda: condition(get_worker(kube, "rot", namespace), "Registered").get("status") == "True",
        30,
        what="Registered=True",
    )
    assert SECRET not in operator.log_tail(100000)


def test_missing_secret_is_a_clear_error(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess, orch: OrchestratorProcess
) -> None:
    kubectl_apply(cluster, worker_manifest("nosecret", namespace, spec(orch.url, "reg-nosecret", "absent")))
    c = wait_for(
        lambda: (
            (c := condition(get_worker(kube, "nosecret", namespace), "Registered"))
            and c.get("reason") == "RegistrationFailed"
            and c
        ),
        90,
        what="RegistrationFailed",
    )
    assert "Secret absent" in c["message"]


def test_selected_orchestrator_secrets_are_picked_up_as_the_fleet_changes(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess, orch: OrchestratorProcess
) -> None:
    cap = "reg-selected"
    labels = {"byoc.livepeer.org/orchestrator": "true", "fleet": "eu"}
    body = {
        "capability": {"name": cap},
        "replicas": 1,
        "sessionsPerPod": 3,
        "gpu": {"count": 0},
        "registration": {"refreshSeconds": 5, "orchestratorSelector": {"matchLabels": {"fleet": "eu"}}},
    }
    kubectl_apply(cluster, worker_manifest("sel", namespace, body))
    wait_for(
        lambda: condition(get_worker(kube, "sel", namespace), "Registered").get("reason") == "NoOrchestrators",
        90,
        what="NoOrchestrators",
    )
    kubectl_apply(cluster, secret_manifest("orch-eu-1", namespace, {"url": orch.url, "secret": SECRET}, labels))
    wait_for(lambda: advertised(orch, cap) == 3, 60, what="registered with the selected orchestrator")
    # a Secret of another fleet is ignored
    other = {"byoc.livepeer.org/orchestrator": "true", "fleet": "us"}
    kubectl_apply(cluster, secret_manifest("orch-us-1", namespace, {"url": "http://127.0.0.1:9", "secret": "x"}, other))
    obj = wait_for(
        lambda: (o := get_worker(kube, "sel", namespace)) and condition(o, "Registered").get("status") == "True" and o,
        30,
        what="Registered",
    )
    assert [e["url"] for e in obj["status"]["orchestrators"]] == [orch.url]
    # and it stays true across refreshes (the status must not flap while the orchestrator keeps it)
    for _ in range(8):
        time.sleep(1)
        o = get_worker(kube, "sel", namespace)
        (entry,) = o["status"]["orchestrators"]
        assert entry["registered"] is True and entry["capacity"] == 3, entry
        assert condition(o, "Registered")["status"] == "True"

    # The fleet shrinks: an orchestrator no longer selected is unregistered from, and leaves the status.
    cluster.kubectl("label", "secret", "orch-eu-1", "fleet-", "-n", namespace)
    wait_for(lambda: advertised(orch, cap) is None, 60, what="unregistered from the deselected orchestrator")
    obj = wait_for(
        lambda: (o := get_worker(kube, "sel", namespace))
        and condition(o, "Registered").get("reason") == "NoOrchestrators"
        and o,
        30,
        what="NoOrchestrators again",
    )
    assert not obj["status"].get("orchestrators")


def test_worker_applied_together_with_its_fleet_secrets_reports_registered(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess, orch: OrchestratorProcess
) -> None:
    cap = "reg-together"
    labels = {"byoc.livepeer.org/orchestrator": "true", "fleet": "x"}
    body = {
        "capability": {"name": cap},
        "replicas": 2,
        "sessionsPerPod": 2,
        "gpu": {"count": 0},
        "registration": {"refreshSeconds": 5, "orchestratorSelector": {"matchLabels": {"fleet": "x"}}},
    }
    items = [
        secret_manifest("orch-x", namespace, {"url": orch.url, "secret": SECRET}, labels),
        worker_manifest("together", namespace, body),
    ]
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    wait_for(lambda: advertised(orch, cap) == 4, 60, what="capacity 4 advertised")
    obj = wait_for(
        lambda: (
            (o := get_worker(kube, "together", namespace))
            and (o["status"].get("orchestrators") or [{}])[0].get("capacity") == 4
            and condition(o, "Registered").get("status") == "True"
            and o
        ),
        30,
        what="status registered at 4",
    )
    assert obj["status"]["orchestrators"][0]["registered"] is True


def heartbeat(orch: OrchestratorProcess, runner_id: str, app: str) -> dict[str, Any]:
    """What a pod's registrar sidecar sends (the sidecars themselves are tested in tests/registrar)."""
    body = json.dumps(
        {
            "app": app,
            "runner_id": runner_id,
            "runner_url": "http://127.64.0.9:8000",
            "mode": "persistent",
            "capacity": 2,
            "status": "ready",
        }
    ).encode()
    req = urllib.request.Request(
        f"{orch.url}/runners/heartbeat",
        data=body,
        method="POST",
        headers={"Authorization": SECRET, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def test_live_runner_pods_get_a_registrar_and_status_follows_discovery(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess, orch: OrchestratorProcess
) -> None:
    app = "lr-dynamic"
    kubectl_apply(cluster, secret_manifest("orch", namespace, {"secret": SECRET}))
    body = spec(orch.url, app, registration={"protocol": "live-runner", "refreshSeconds": 5})
    kubectl_apply(cluster, worker_manifest("lr", namespace, body))
    c = wait_for(
        lambda: (
            (c := condition(get_worker(kube, "lr", namespace), "Registered")) and c.get("reason") == "Registering" and c
        ),
        90,
        what="Registering",
    )
    assert c["status"] == "False"
    pods = wait_for(
        lambda: [
            p
            for p in kube.list(Pod, namespace=namespace, labels={"byoc.livepeer.org/worker": "lr"})
            if p.metadata.labels.get("app.kubernetes.io/component") == "worker"
        ],
        30,
        what="pods",
    )
    assert [c.name for c in pods[0].spec.containers] == ["worker", "registrar"]
    assert not list(kube.list(Deployment, namespace=namespace, labels={"app.kubernetes.io/component": "router"}))
    # the pods' registrars heartbeat (stand-in here: kwok pods run no processes)
    for pod in pods:
        heartbeat(orch, pod.metadata.name, app)
    obj = wait_for(
        lambda: (o := get_worker(kube, "lr", namespace)) and condition(o, "Registered").get("status") == "True" and o,
        30,
        what="Registered via discovery",
    )
    (entry,) = obj["status"]["orchestrators"]
    assert entry["runners"] == 2 and entry["capacity"] == 4
    assert "byoc.livepeer.org/registration" not in (obj["metadata"].get("finalizers") or [])
