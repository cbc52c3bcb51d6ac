"""Two BYOCWorkers in different namespaces registering one capability name with one orchestrator: the one created
first holds it, the other says so and is not registered, and deleting the later one never removes the first one's
registration (security review M10)."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from byoc_testenv.orchestrator.process import OrchestratorProcess
from byoc_testenv.polling import wait_for
from lightkube import Client

from tests.support.operator import OperatorProcess, condition, get_worker, kubectl_apply, worker_manifest

from .test_registration_cluster import SECRET, capabilities, secret_manifest, spec

pytestmark = pytest.mark.cluster

CAP = "shared-cap"


@pytest.fixture(scope="module")
def orch() -> Iterator[OrchestratorProcess]:
    with OrchestratorProcess.start(secret=SECRET) as proc:
        yield proc


@pytest.fixture
def other_namespace(cluster: Any, namespace: str) -> Iterator[str]:
    name = cluster.create_namespace(f"{namespace[:55]}-b", labels={"byoc-testenv/test": "true"})
    yield name
    with contextlib.suppress(Exception):
        cluster.delete_namespace(name, wait=False)


def registered_url(orch: OrchestratorProcess) -> str | None:
    cap = capabilities(orch).get(CAP)
    return cap["url"] if cap else None


def history(orch: OrchestratorProcess) -> list[dict[str, Any]]:
    """Every call the orchestrator took for the name, unregisters included."""
    with urllib.request.urlopen(f"{orch.url}/_test/capabilities", timeout=5) as resp:
        return [h for h in json.loads(resp.read())["history"] if h["name"] == CAP]


def test_the_later_worker_is_refused_the_name_cannot_unregister_it_and_gets_it_once_free(
    cluster: Any,
    kube: Client,
    namespace: str,
    other_namespace: str,
    operator: OperatorProcess,
    orch: OrchestratorProcess,
) -> None:
    first_url = f"http://holder-router.{namespace}.svc:8080"
    kubectl_apply(cluster, secret_manifest("orch", namespace, {"secret": SECRET}))
    kubectl_apply(cluster, worker_manifest("holder", namespace, spec(orch.url, CAP)))
    wait_for(lambda: registered_url(orch) == first_url, 90, what="the first worker registered")
    # creationTimestamp has whole seconds and a tie goes to the namespace that sorts first, which is this one
    # ("...-b" < "...f5"): created in the holder's second, the intruder would hold the name (CI saw exactly that).
    created = datetime.fromisoformat(get_worker(kube, "holder", namespace)["metadata"]["creationTimestamp"])
    time.sleep(max(0.0, created.timestamp() + 1.1 - time.time()))

    kubectl_apply(cluster, secret_manifest("orch", other_namespace, {"secret": SECRET}))
    kubectl_apply(cluster, worker_manifest("intruder", other_namespace, spec(orch.url, CAP)))

    def refused() -> dict[str, Any] | None:
        obj = get_worker(kube, "intruder", other_namespace)
        return obj if condition(obj, "Registered").get("reason") == "CapabilityConflict" else None

    try:
        obj = wait_for(refused, 90, what="CapabilityConflict")
    except AssertionError as exc:  # say what the worker showed and what the operator did
        shown = (get_worker(kube, "intruder", other_namespace).get("status") or {}).get("conditions")
        raise AssertionError(f"{exc}\nintruder conditions: {shown}\noperator log:\n{operator.log_tail(80)}") from exc
    (entry,) = obj["status"]["orchestrators"]
    assert entry == {"url": orch.url, "registered": False, "capacity": 0, "heldBy": f"{namespace}/holder"}
    message = condition(obj, "Registered")["message"]
    assert f"held by BYOCWorker {namespace}/holder (created first), not registered there" in message
    # Across the later worker's refreshes, the orchestrator keeps sending the name's traffic to the first one.
    calls = len(history(orch))
    wait_for(lambda: len(history(orch)) >= calls + 2, 30, what="the holder's refreshes")
    assert registered_url(orch) == first_url
    assert {h.get("url") for h in history(orch)} == {first_url}

    # Deleting the later worker leaves the holder's registration alone.
    cluster.kubectl("delete", "-n", other_namespace, "byocworker/intruder", "--timeout=60s")
    assert registered_url(orch) == first_url
    assert [h for h in history(orch) if h["action"] == "unregister"] == []

    # Once the holder is gone, the worker that waited for the name gets it.
    kubectl_apply(cluster, worker_manifest("intruder", other_namespace, spec(orch.url, CAP)))
    wait_for(refused, 90, what="CapabilityConflict again")
    cluster.kubectl("delete", "-n", namespace, "byocworker/holder", "--timeout=60s")
    second_url = f"http://intruder-router.{other_namespace}.svc:8080"
    wait_for(lambda: registered_url(orch) == second_url, 60, what="the waiting worker registered")
