"""The orchestrator Secret deleted, and the orchestrator secret rotated. The user sees a clear error that never
contains a secret; the operator and the other workers carry on; re-creating or updating the Secret recovers by
itself, and after a rotation the old secret is never sent again."""

from __future__ import annotations

import pytest
from byoc_testenv import Cluster
from byoc_testenv.orchestrator import OrchestratorProcess
from byoc_testenv.orchestrator.faults import fingerprint, journal
from byoc_testenv.polling import wait_for
from lightkube import Client

from tests.support.operator import OperatorProcess, condition

from .support import (
    SECRET,
    advertised,
    apply_secret,
    apply_worker,
    orchestrator_entry,
    registered_with,
    registration_spec,
    secret_leaks,
    wait_event,
)

pytestmark = pytest.mark.cluster

OLD = "rotating-secret-OLD-5d1e9a"
NEW = "rotating-secret-NEW-b37c02"


def capacity_at(orch_url: str, capability: str) -> int | None:
    """Free slots registered (0 here: the routers reach no worker process, support.py); None: not registered."""
    return (advertised(orch_url, capability) or {}).get("capacity")


def test_deleted_secret_is_a_clear_error_and_recreating_it_recovers(
    faults_cluster: Cluster, kube: Client, ns: str, operator: OperatorProcess, orch: OrchestratorProcess
) -> None:
    apply_secret(faults_cluster, ns, "orch-a", SECRET)
    apply_secret(faults_cluster, ns, "orch-b", SECRET)
    apply_worker(faults_cluster, ns, "victim", registration_spec(orch.url, "fault-secret-victim", "orch-a"))
    apply_worker(faults_cluster, ns, "bystander", registration_spec(orch.url, "fault-secret-bystander", "orch-b"))
    wait_for(lambda: capacity_at(orch.url, "fault-secret-victim") == 0, 90, what="victim advertised")
    wait_for(lambda: capacity_at(orch.url, "fault-secret-bystander") == 0, 90, what="bystander advertised")

    faults_cluster.kubectl("delete", "secret", "orch-a", "-n", ns)
    obj = registered_with(kube, "victim", ns, "RegistrationFailed", timeout=60)
    assert "cannot read key 'secret' of Secret orch-a" in condition(obj, "Registered")["message"]
    entry = orchestrator_entry(obj, orch.url)
    assert entry["lastError"] == "cannot read key 'secret' of Secret orch-a", entry
    wait_event(faults_cluster, ns, "victim", "Warning", "RegistrationFailed", "of Secret orch-a")
    # Nothing else suffers: the operator runs, the other worker keeps being refreshed and registered.
    refreshed = len(journal(orch.url, "/capability/register"))
    wait_for(lambda: len(journal(orch.url, "/capability/register")) > refreshed, 30, what="refreshes going on")
    assert condition(registered_with(kube, "bystander", ns, "AllRegistered"), "Registered")["status"] == "True"
    assert operator.proc is not None and operator.proc.poll() is None

    apply_secret(faults_cluster, ns, "orch-a", SECRET)
    obj = registered_with(kube, "victim", ns, "AllRegistered", timeout=60)
    assert "lastError" not in orchestrator_entry(obj, orch.url)
    assert capacity_at(orch.url, "fault-secret-victim") == 0
    assert secret_leaks(faults_cluster, ns, operator, SECRET) == []


def test_rotated_secret_is_used_and_the_old_one_never_sent_again(
    faults_cluster: Cluster, kube: Client, ns: str, operator: OperatorProcess
) -> None:
    cap = "fault-rotation"
    apply_secret(faults_cluster, ns, "orch", OLD)
    with OrchestratorProcess.start(secret=OLD) as before:
        apply_worker(faults_cluster, ns, "w", registration_spec(before.url, cap))
        wait_for(lambda: capacity_at(before.url, cap) == 0, 90, what="registered with the old secret")
        url = before.url
    # The orchestrator comes back with a new -orchSecret (the usual way to rotate it), forgetting its table.
    with OrchestratorProcess.start(secret=NEW, port=int(url.rsplit(":", 1)[1])) as after:
        # Refused with the old secret (a connection error from the minute it was down may be shown first).
        wait_for(
            lambda: (o := registered_with(kube, "w", ns, "RegistrationFailed", timeout=60))
            and "HTTP 400: invalid authorization" in orchestrator_entry(o, url).get("lastError", ""),
            60,
            what="the new orchestrator refusing the old secret",
        )

        apply_secret(faults_cluster, ns, "orch", NEW)  # the Kubernetes Secret follows
        wait_for(lambda: capacity_at(after.url, cap) == 0, 60, what="registered with the new secret")
        registered_with(kube, "w", ns, "AllRegistered")
        wait_event(faults_cluster, ns, "w", "Normal", "Registered", url)
        # a few more refreshes, then look at every call it received
        first_new = len(journal(after.url, "/capability/"))
        wait_for(lambda: len(journal(after.url, "/capability/")) >= first_new + 2, 30, what="two more refreshes")
        sent = [call["auth"] for call in journal(after.url, "/capability/")]
    assert set(sent) == {fingerprint(OLD), fingerprint(NEW)}
    switched = sent.index(fingerprint(NEW))
    assert fingerprint(OLD) not in sent[switched:], sent
    assert secret_leaks(faults_cluster, ns, operator, OLD, NEW) == []
