"""The operator SIGKILLed in the middle of a reconcile, and the API server restarted under it: a new operator
converges without duplicating anything, the registration and its finalizer survive, and watches resume."""

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
    registered,
    registered_with,
    registration_spec,
    router_children,
)

pytestmark = pytest.mark.cluster


def in_flight(orch_url: str, before: int) -> bool:
    """A call to /capability/* arrived after the first `before` ones and has not been answered yet."""
    calls = journal(orch_url, "/capability/")
    return len(calls) > before and calls[-1]["status"] is None


def test_operator_killed_mid_reconcile_converges_without_duplicates(
    faults_cluster: Cluster, kube: Client, ns: str, operator: OperatorProcess, orch: OrchestratorProcess
) -> None:
    cap = "fault-killed"
    apply_secret(faults_cluster, ns, "orch", SECRET)
    # A slow orchestrator holds the first reconcile between applying the children and writing the status.
    before = len(journal(orch.url, "/capability/"))
    inject(orch.url, Fault("delay", delay=8, paths=("/capability/",)))
    try:
        apply_worker(faults_cluster, ns, "w", registration_spec(orch.url, cap))
        wait_for(lambda: in_flight(orch.url, before), 60, what="a registration call in flight")
        operator.kill()
    finally:
        clear(orch.url)
    obj = get_worker(kube, "w", ns)
    assert not condition(obj, "Registered"), obj.get("status")  # killed before it could write the status
    assert finalizers(obj) and "w" in children(kube, ns)["deployments"]

    operator.start()
    wait_for(lambda: registered(orch.url, cap), 90, what="registered")
    obj = registered_with(kube, "w", ns, "AllRegistered")
    wait_for(lambda: condition(get_worker(kube, "w", ns), "Ready").get("status") == "True", 60, what="Ready")
    assert finalizers(obj) == ["byoc.livepeer.org/registration"]
    assert children(kube, ns) == router_children("w")
    assert advertised(orch.url, cap)["url"] == f"http://w-router.{ns}.svc:8080"

    # The restarted operator still owns the registration: deleting unregisters, then the children go.
    faults_cluster.kubectl("delete", "-n", ns, "byocworker/w", "--timeout=90s", timeout=120)
    assert advertised(orch.url, cap) is None
    wait_for(lambda: not children(kube, ns)["deployments"], 60, what="children garbage-collected")


def test_api_server_restart_is_ridden_out(
    faults_cluster: Cluster, kube: Client, ns: str, operator: OperatorProcess, orch: OrchestratorProcess
) -> None:
    cap = "fault-apiserver"
    apply_secret(faults_cluster, ns, "orch", SECRET)
    apply_worker(faults_cluster, ns, "w", registration_spec(orch.url, cap))
    wait_for(lambda: registered(orch.url, cap), 90, what="registered")
    registered_with(kube, "w", ns, "AllRegistered")

    faults_cluster.restart_apiserver(down_seconds=8)
    assert operator.proc is not None and operator.proc.poll() is None, operator.log_tail()
    # The orchestrator kept the registration through the outage (nothing to unregister for).
    assert registered(orch.url, cap)

    # Watches resumed: a change made after the restart is acted on, and the status converges.
    faults_cluster.kubectl("scale", "-n", ns, "byocworker/w", "--replicas=3")
    obj = wait_for(
        lambda: (
            (o := registered_with(kube, "w", ns, "AllRegistered"))
            and condition(o, "Ready").get("status") == "True"
            and o["status"]["capacity"] == 6
            and o
        ),
        90,
        what="Ready and registered at 6",
    )
    assert [(e["registered"], e["capacity"]) for e in obj["status"]["orchestrators"]] == [(True, 0)]
    assert children(kube, ns)["deployments"] == ["w", "w-router"]
    assert operator.proc.poll() is None
