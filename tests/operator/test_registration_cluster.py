"""BYOC capability registration against the test orchestrator (testenv/byoc_testenv/orchestrator), driven by the
operator on the real control plane (kwok pods: nothing runs in them). With no router process answering, what the
routers can place is unknown, so the worker is registered with no free slot (RoutersUnreachable): what these
tests check is the registration itself (secrets, fleets, deletion). The capacity that follows real routers is
tested end to end in tests/e2e/test_capacity_e2e.py, and against go-livepeer in docs/go-livepeer-compatibility.md."""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from byoc_testenv.orchestrator.process import OrchestratorProcess, fleet_secret_data, orchestrator_spec
from byoc_testenv.polling import wait_for
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Pod, Service

from tests.support.operator import OperatorProcess, condition, get_worker, kubectl_apply, worker_manifest

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
        "orchestrators": [orchestrator_spec(orch_url, secret_name)],
        **extra,
    }


def advertised(orch: OrchestratorProcess, capability: str) -> int | None:
    cap = capabilities(orch).get(capability)
    return cap["capacity"] if cap else None


def registered_with_nothing_free(kube: Client, name: str, namespace: str) -> dict[str, Any] | None:
    """The worker's status once it is registered everywhere and says why nothing is advertised."""
    obj = get_worker(kube, name, namespace)
    entries = (obj or {}).get("status", {}).get("orchestrators") or []
    c = condition(obj, "Registered") if obj else {}
    if entries and all(e.get("registered") and e.get("capacity") == 0 and "lastError" not in e for e in entries):
        if (c.get("status"), c.get("reason")) == ("False", "RoutersUnreachable"):
            return obj
    return None


def test_registration_without_routers_advertises_nothing_and_deletion_unregisters(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess, orch: OrchestratorProcess
) -> None:
    cap = "reg-follows"
    kubectl_apply(cluster, secret_manifest("orch", namespace, {"secret": SECRET}))
    kubectl_apply(cluster, worker_manifest("fleet", namespace, spec(orch.url, cap)))

    # Two ready pods, but no router answers: registered, with no free slot (never more than can be placed).
    wait_for(lambda: advertised(orch, cap) == 0, 90, what="registered with capacity 0")
    entry = capabilities(orch)[cap]
    assert entry["url"] == f"http://fleet-router.{namespace}.svc:8080"
    assert (entry["price_per_unit"], entry["price_scaling"], entry["currency"]) == (1200, 1000, "wei")
    # Registration does not wait for every pod: the status counts the second one once kwok marks it ready.
    def both_ready() -> dict[str, Any] | None:
        obj = registered_with_nothing_free(kube, "fleet", namespace)
        return obj if obj and obj["status"]["readyReplicas"] == 2 else None

    obj = wait_for(both_ready, 60, what="RoutersUnreachable with both pods ready")
    (status_entry,) = obj["status"]["orchestrators"]
    assert status_entry["since"] and obj["status"]["capacity"] == 4
    assert obj["status"]["endpoint"] == f"http://fleet-router.{namespace}.svc:8080"
    assert "no router of this worker answers" in condition(obj, "Registered")["message"]
    assert "byoc.livepeer.org/registration" in obj["metadata"]["finalizers"]
    # the router the URL points at, and the headless Service it finds pods through
    assert kube.get(Deployment, "fleet-router", namespace=namespace).spec.replicas == 2
    assert kube.get(Service, "fleet-pods", namespace=namespace).spec.clusterIP == "None"

    # Scaled to zero: still registered (capacity 0), so streams that may run still get their params and stop.
    cluster.kubectl("scale", "-n", namespace, "byocworker/fleet", "--replicas=0")
    wait_for(
        lambda: condition(get_worker(kube, "fleet", namespace), "Registered").get("reason") == "NoCapacity",
        60,
        what="Registered=False NoCapacity",
    )
    assert advertised(orch, cap) == 0

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
    wait_for(lambda: advertised(orch, cap) == 0, 60, what="registered after rotation")
    wait_for(lambda: registered_with_nothing_free(kube, "rot", namespace), 30, what="no longer RegistrationFailed")
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
    assert "cannot read key 'secret' of Secret absent" in c["message"]


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
    kubectl_apply(cluster, secret_manifest("orch-eu-1", namespace, fleet_secret_data(orch.url, SECRET), labels))
    wait_for(lambda: advertised(orch, cap) == 0, 60, what="registered with the selected orchestrator")
    # a Secret of another fleet is ignored
    other = {"byoc.livepeer.org/orchestrator": "true", "fleet": "us"}
    kubectl_apply(cluster, secret_manifest("orch-us-1", namespace, fleet_secret_data("http://127.0.0.1:9", "x"), other))
    obj = wait_for(lambda: registered_with_nothing_free(kube, "sel", namespace), 30, what="Registered")
    assert [e["url"] for e in obj["status"]["orchestrators"]] == [orch.url]
    # and it stays so across refreshes (the status must not flap while the orchestrator keeps it)
    for _ in range(8):
        time.sleep(1)
        assert registered_with_nothing_free(kube, "sel", namespace), get_worker(kube, "sel", namespace)

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
        secret_manifest("orch-x", namespace, fleet_secret_data(orch.url, SECRET), labels),
        worker_manifest("together", namespace, body),
    ]
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    wait_for(lambda: advertised(orch, cap) == 0, 60, what="registered")
    obj = wait_for(lambda: registered_with_nothing_free(kube, "together", namespace), 30, what="status registered")
    assert obj["status"]["orchestrators"][0]["url"] == orch.url


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
