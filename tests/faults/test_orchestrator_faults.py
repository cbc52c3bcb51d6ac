"""An orchestrator in trouble: answering 5xx or 401, slower than the operator's timeout, dropping connections,
or gone altogether. The user sees RegistrationFailed (condition, per-orchestrator lastError, a Warning Event) with
a message that says what happened and never the secret; the registration comes back by itself once the
orchestrator does, with one entry in its table; a worker deleted meanwhile waits for the orchestrator."""

from __future__ import annotations

import pytest
from byoc_testenv import Cluster
from byoc_testenv.orchestrator import OrchestratorProcess
from byoc_testenv.orchestrator.faults import Fault, clear, inject, journal
from byoc_testenv.polling import wait_for
from lightkube import Client

from tests.support.operator import OperatorProcess, condition, get_worker

from .support import (
    SECRET,
    advertised,
    apply_secret,
    apply_worker,
    children,
    finalizers,
    orchestrator_entry,
    registered_with,
    registration_spec,
    router_children,
    secret_leaks,
    wait_event,
)

pytestmark = pytest.mark.cluster

FAULTS = {
    "5xx": (Fault("status", status=503, body="orchestrator overloaded", paths=("/capability/",)), "HTTP 503"),
    "401": (Fault("status", status=401, body="invalid authorization", paths=("/capability/",)), "HTTP 401"),
    # beyond the operator's 10 s timeout for a call
    "slow": (Fault("delay", delay=15, paths=("/capability/",)), "TimeoutError"),
    "drop": (Fault("drop", paths=("/capability/",)), "ServerDisconnectedError"),
}


def registered_at(orch_url: str, capability: str, capacity: int) -> bool:
    """Registered with this many free slots (0 here: the routers reach no worker process, support.py)."""
    return (advertised(orch_url, capability) or {}).get("capacity") == capacity


@pytest.mark.parametrize("fault", list(FAULTS))
def test_failing_orchestrator_is_reported_and_recovers(
    faults_cluster: Cluster, kube: Client, ns: str, operator: OperatorProcess, orch: OrchestratorProcess, fault: str
) -> None:
    cap, (injected, says) = f"fault-{fault}", FAULTS[fault]
    apply_secret(faults_cluster, ns, "orch", SECRET)
    apply_worker(faults_cluster, ns, "w", registration_spec(orch.url, cap))
    wait_for(lambda: registered_at(orch.url, cap, 0), 90, what="registered")
    registered_with(kube, "w", ns, "AllRegistered")

    inject(orch.url, injected)
    try:
        obj = registered_with(kube, "w", ns, "RegistrationFailed", timeout=60)
        c = condition(obj, "Registered")
        assert c["status"] == "False" and says in c["message"] and orch.url in c["message"], c
        entry = orchestrator_entry(obj, orch.url)
        assert says in entry["lastError"], entry
        # still listed there (the orchestrator kept the last registration): the status does not pretend otherwise
        assert entry["registered"] is True
        wait_event(faults_cluster, ns, "w", "Warning", "RegistrationFailed", says)
        assert condition(obj, "Ready")["status"] == "True"  # the pods are fine; only the registration is not
    finally:
        clear(orch.url)

    obj = registered_with(kube, "w", ns, "AllRegistered", timeout=60)
    assert "lastError" not in orchestrator_entry(obj, orch.url)
    wait_event(faults_cluster, ns, "w", "Normal", "Registered", orch.url)
    assert registered_at(orch.url, cap, 0) and advertised(orch.url, cap)["url"] == f"http://w-router.{ns}.svc:8080"
    assert children(kube, ns) == router_children("w")
    assert secret_leaks(faults_cluster, ns, operator, SECRET) == []


def test_deleting_while_the_orchestrator_fails_waits_for_it(
    faults_cluster: Cluster, kube: Client, ns: str, operator: OperatorProcess, orch: OrchestratorProcess
) -> None:
    cap = "fault-delete-5xx"
    apply_secret(faults_cluster, ns, "orch", SECRET)
    apply_worker(faults_cluster, ns, "w", registration_spec(orch.url, cap))
    wait_for(lambda: registered_at(orch.url, cap, 0), 90, what="registered")
    registered_with(kube, "w", ns, "AllRegistered")

    inject(orch.url, Fault("status", status=502, paths=("/capability/unregister",)))
    try:
        faults_cluster.kubectl("delete", "-n", ns, "byocworker/w", "--wait=false")
        wait_for(
            lambda: len(journal(orch.url, "/capability/unregister")) >= 2, 60, what="the operator retrying the call"
        )
        obj = get_worker(kube, "w", ns)  # held by the finalizer, not silently orphaned at the orchestrator
        assert obj["metadata"]["deletionTimestamp"] and finalizers(obj)
        assert registered_at(orch.url, cap, 0)
    finally:
        clear(orch.url)
    wait_for(lambda: advertised(orch.url, cap) is None, 60, what="unregistered once the orchestrator answers")
    wait_for(lambda: not any(children(kube, ns)["deployments"]), 60, what="the worker and its children gone")


def test_unreachable_orchestrator_is_reported_and_a_restarted_one_gets_the_registration_back(
    faults_cluster: Cluster, kube: Client, ns: str, operator: OperatorProcess
) -> None:
    cap = "fault-unreachable"
    apply_secret(faults_cluster, ns, "orch", SECRET)
    first = OrchestratorProcess.start(secret=SECRET)
    url = first.url
    try:
        apply_worker(faults_cluster, ns, "w", registration_spec(url, cap))
        wait_for(lambda: registered_at(url, cap, 0), 90, what="registered")
    finally:
        first.stop()  # port closed; what it had registered is gone with it, as on a real restart

    obj = registered_with(kube, "w", ns, "RegistrationFailed", timeout=60)
    assert "Cannot connect" in orchestrator_entry(obj, url)["lastError"]
    wait_event(faults_cluster, ns, "w", "Warning", "RegistrationFailed", "Cannot connect")

    with OrchestratorProcess.start(secret=SECRET, port=int(url.rsplit(":", 1)[1])) as again:
        # Orchestrators never health-check and forget everything on restart: the periodic refresh brings it back.
        wait_for(lambda: registered_at(again.url, cap, 0), 60, what="registered again after the restart")
        registered_with(kube, "w", ns, "AllRegistered")
        assert [e["path"] for e in journal(again.url, "/capability/")].count("/capability/register") >= 1
    assert secret_leaks(faults_cluster, ns, operator, SECRET) == []
