"""status.py, pinned down: whole condition triples (status, reason, message), Deployment status as the API server
sends it (zero fields left out), and the rarer branches (config errors, init containers, exited pods, errors)."""

from __future__ import annotations

from typing import Any

import pytest
from byoc_operator import api
from byoc_operator.advertise import Address
from byoc_operator.render import Worker
from byoc_operator.slots import Slots
from byoc_operator.status import (
    PodProblem,
    compute_status,
    entry_json,
    invalid_spec_status,
    is_worker_pod,
    orchestrator_entries,
    pod_problem,
    same_status,
    summarise,
    transitions,
    with_registration,
)

NOW, LATER = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def worker(replicas: int = 2, sessions: int = 3, generation: int = 4) -> Worker:
    return Worker.from_body(
        {
            "metadata": {"name": "w", "namespace": "ns", "uid": "u", "generation": generation},
            "spec": {"replicas": replicas, "sessionsPerPod": sessions},
        },
        "img",
    )


def deployment(generation: int = 1, **status: int) -> dict[str, Any]:
    """A Deployment as the API server shows it: status fields that are 0 are left out."""
    return {"metadata": {"name": "w", "generation": generation}, "status": {"observedGeneration": generation, **status}}


def ready_pod(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def waiting(name: str, reason: str, message: str | None = None, init: bool = False, **cs: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"reason": reason} | ({"message": message} if message else {})
    container = {"name": "worker", "image": "reg/img:1", "state": {"waiting": state}, **cs}
    key = "initContainerStatuses" if init else "containerStatuses"
    return {"metadata": {"name": name}, "status": {"phase": "Pending", key: [container]}}


def triples(status: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}


# -- pod_problem -------------------------------------------------------------------------------------------------


def test_a_ready_pod_has_no_problem() -> None:
    assert pod_problem(ready_pod("a")) is None


@pytest.mark.parametrize("reason", ["CreateContainerConfigError", "CreateContainerError", "RunContainerError"])
def test_a_container_that_cannot_be_configured_is_a_hard_problem_with_the_kubelet_message(reason: str) -> None:
    pod = waiting("p", reason, 'secret "tok" not found')
    assert pod_problem(pod) == PodProblem("ContainerConfigError", f'pod p: {reason}: secret "tok" not found', True)


def test_a_config_error_without_a_kubelet_message_names_the_reason() -> None:
    assert pod_problem(waiting("p", "CreateContainerConfigError")) == PodProblem(
        "ContainerConfigError", "pod p: CreateContainerConfigError", True
    )


def test_a_container_being_created_is_on_its_way() -> None:
    assert pod_problem(waiting("p", "ContainerCreating")) == PodProblem("PodsPending", "pod p is pending", False)


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"])
def test_image_pull_failures_name_the_image_and_the_kubelet_message(reason: str) -> None:
    assert pod_problem(waiting("p", reason, "manifest unknown")) == PodProblem(
        "ImagePullError", f"pod p: {reason} for image reg/img:1: manifest unknown", True
    )


def test_an_init_container_that_cannot_be_pulled_is_reported() -> None:
    pod = waiting("p", "ErrImagePull", init=True)
    assert pod_problem(pod) == PodProblem("ImagePullError", "pod p: ErrImagePull for image reg/img:1", True)


def test_an_image_pull_error_without_an_image_says_so() -> None:
    pod = waiting("p", "ErrImagePull")
    del pod["status"]["containerStatuses"][0]["image"]
    assert pod_problem(pod) == PodProblem("ImagePullError", "pod p: ErrImagePull for image ?", True)


def test_crash_loop_names_the_container_restarts_and_last_exit() -> None:
    pod = waiting(
        "p", "CrashLoopBackOff", restartCount=7, lastState={"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
    )
    assert pod_problem(pod) == PodProblem(
        "CrashLoop", "pod p: container worker is crash-looping, restarted 7 times (last exit code 137, OOMKilled)", True
    )


def test_crash_loop_without_a_last_state_or_a_count() -> None:
    assert pod_problem(waiting("p", "CrashLoopBackOff")) == PodProblem(
        "CrashLoop", "pod p: container worker is crash-looping, restarted 0 times", True
    )
    pod = waiting("p", "CrashLoopBackOff", lastState={"terminated": {"exitCode": 1}})
    assert pod_problem(pod) == PodProblem(
        "CrashLoop", "pod p: container worker is crash-looping, restarted 0 times (last exit code 1, Error)", True
    )


@pytest.mark.parametrize("phase", ["Failed", "Succeeded"])
def test_an_exited_pod_needs_a_person(phase: str) -> None:
    pod = {"metadata": {"name": "p"}, "status": {"phase": phase}}
    assert pod_problem(pod) == PodProblem("PodExited", f"pod p exited ({phase})", True)


def test_a_running_pod_that_is_not_ready_is_starting() -> None:
    pod = {
        "metadata": {"name": "p"},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]},
    }
    assert pod_problem(pod) == PodProblem(
        "PodsStarting", "pod p is running but not ready yet (loading its model?)", False
    )


def test_a_terminating_pod_is_on_its_way_out_even_when_ready() -> None:
    pod = ready_pod("p")
    pod["metadata"]["deletionTimestamp"] = NOW
    assert pod_problem(pod) == PodProblem("Terminating", "pod p is terminating", False)


def test_a_pod_without_metadata_or_status() -> None:
    assert pod_problem({}) == PodProblem(
        "PodsStarting", "pod ? is running but not ready yet (loading its model?)", False
    )


def test_unschedulable_without_a_message() -> None:
    pod = {
        "metadata": {"name": "p"},
        "status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]},
    }
    assert pod_problem(pod) == PodProblem("Unschedulable", "pod p cannot be scheduled: ", True)


def test_scheduled_but_waiting_is_not_unschedulable() -> None:
    pod = {
        "metadata": {"name": "p"},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]},
    }
    assert pod_problem(pod) == PodProblem("PodsPending", "pod p is pending", False)


# -- summarise ---------------------------------------------------------------------------------------------------


def test_summarise_prefers_hard_problems_then_the_most_common_and_counts_the_rest() -> None:
    soft = PodProblem("PodsStarting", "a starting", False)
    pull_b, pull_c = PodProblem("ImagePullError", "b pull", True), PodProblem("ImagePullError", "c pull", True)
    crash = PodProblem("CrashLoop", "d crash", True)
    assert summarise([soft, soft, soft, crash, pull_b, pull_c]) == PodProblem(
        "ImagePullError", "b pull (and 1 more pod(s) with the same reason)", True
    )
    assert summarise([soft, PodProblem("PodsPending", "e pending", False), soft]) == PodProblem(
        "PodsStarting", "a starting (and 1 more pod(s) with the same reason)", False
    )
    assert summarise([crash]) == crash
    assert summarise([]) is None


# -- compute_status ----------------------------------------------------------------------------------------------


def test_a_new_deployment_with_every_zero_field_left_out_is_not_ready_and_has_no_capacity() -> None:
    s = compute_status(worker(), deployment(), [], None, NOW)
    assert triples(s) == {
        "Ready": ("False", "PodsStarting", "0/2 pods ready: waiting for the Deployment to report ready pods"),
        "Progressing": ("True", "ScalingUp", "0/2 pods ready"),
        "Degraded": ("False", "AsExpected", "no problem seen"),
    }
    assert (s["replicas"], s["readyReplicas"], s["availableReplicas"], s["updatedReplicas"]) == (0, 0, 0, 0)
    assert (s["ready"], s["capacity"]) == ("0/2", 0)


def test_pods_created_but_none_ready_yet_reports_zero_ready() -> None:
    pods = [{"metadata": {"name": n}, "status": {"phase": "Pending"}} for n in ("a", "b")]
    s = compute_status(worker(), deployment(replicas=2, updatedReplicas=2), pods, None, NOW)
    assert triples(s) == {
        "Ready": ("False", "PodsPending", "0/2 pods ready: pod a is pending (and 1 more pod(s) with the same reason)"),
        "Progressing": ("True", "PodsPending", "pod a is pending (and 1 more pod(s) with the same reason)"),
        "Degraded": ("False", "AsExpected", "no problem seen"),
    }
    assert (s["replicas"], s["readyReplicas"], s["availableReplicas"], s["updatedReplicas"], s["capacity"]) == (
        2,
        0,
        0,
        2,
        0,
    )


def test_ready_but_not_yet_available_or_updated_is_not_converged() -> None:
    pods = [ready_pod("a"), ready_pod("b")]
    s = compute_status(worker(), deployment(replicas=2, readyReplicas=2, updatedReplicas=2), pods, None, NOW)
    assert triples(s)["Ready"] == (
        "False",
        "PodsStarting",
        "2/2 pods ready: waiting for the Deployment to report ready pods",
    )
    assert triples(s)["Progressing"] == ("True", "ScalingUp", "2/2 pods ready")
    assert s["availableReplicas"] == 0 and s["capacity"] == 6
    s = compute_status(worker(), deployment(replicas=2, readyReplicas=2, availableReplicas=2), pods, None, NOW)
    assert triples(s)["Progressing"] == ("True", "RollingOut", "0/2 pods on the current revision")


def test_converged_names_ready_and_desired() -> None:
    full = {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "updatedReplicas": 2}
    s = compute_status(worker(), deployment(**full), [ready_pod("a"), ready_pod("b")], None, NOW)
    assert triples(s) == {
        "Ready": ("True", "AllPodsReady", "2/2 pods ready"),
        "Progressing": ("False", "Converged", "2/2 pods ready, all on the current revision"),
        "Degraded": ("False", "AsExpected", "no problem seen"),
    }
    assert {c["observedGeneration"] for c in s["conditions"]} == {4}
    assert {c["lastTransitionTime"] for c in s["conditions"]} == {NOW}
    assert (s["replicas"], s["readyReplicas"], s["availableReplicas"], s["updatedReplicas"]) == (2, 2, 2, 2)


def test_a_deployment_status_without_observed_generation_is_trusted_only_for_generation_zero() -> None:
    full = {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "updatedReplicas": 2}
    dep = {"metadata": {"name": "w"}, "status": dict(full)}
    assert triples(compute_status(worker(), dep, [], None, NOW))["Ready"][0] == "True"
    dep = {"metadata": {"name": "w", "generation": 1}, "status": dict(full)}
    assert triples(compute_status(worker(), dep, [], None, NOW))["Ready"][0] == "False"


def test_more_pods_than_desired_is_rolling_out() -> None:
    status = {"replicas": 3, "readyReplicas": 3, "availableReplicas": 3, "updatedReplicas": 3}
    s = compute_status(worker(), deployment(**status), [], None, NOW)
    assert triples(s)["Progressing"] == ("True", "RollingOut", "3/2 pods on the current revision")
    assert triples(s)["Ready"] == (
        "False",
        "PodsStarting",
        "3/2 pods ready: waiting for the Deployment to report ready pods",
    )


def test_a_reconcile_error_is_not_ready_and_degraded_whatever_the_pods_say() -> None:
    full = {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "updatedReplicas": 2}
    s = compute_status(worker(), deployment(**full), [ready_pod("a")], None, NOW, error="cannot create Service: 403")
    assert triples(s) == {
        "Ready": ("False", "ReconcileError", "cannot create Service: 403"),
        "Progressing": ("False", "Converged", "2/2 pods ready, all on the current revision"),
        "Degraded": ("True", "ReconcileError", "cannot create Service: 403"),
    }
    s = compute_status(worker(0), deployment(), [], None, NOW, error="boom")
    assert triples(s)["Ready"] == ("False", "ReconcileError", "boom")


def test_a_hard_problem_stalls_and_degrades() -> None:
    pods = [ready_pod("a"), waiting("b", "CreateContainerConfigError", "no key tok")]
    s = compute_status(
        worker(), deployment(replicas=2, readyReplicas=1, availableReplicas=1, updatedReplicas=2), pods, None, NOW
    )
    msg = "pod b: CreateContainerConfigError: no key tok"
    assert triples(s) == {
        "Ready": ("False", "ContainerConfigError", msg),
        "Progressing": ("False", "Stalled", msg),
        "Degraded": ("True", "ContainerConfigError", msg),
    }
    assert s["capacity"] == 3


def test_an_exited_pod_is_degraded() -> None:
    pods = [{"metadata": {"name": "b"}, "status": {"phase": "Failed"}}]
    s = compute_status(worker(1), deployment(replicas=1, updatedReplicas=1), pods, None, NOW)
    assert triples(s)["Degraded"] == ("True", "PodExited", "pod b exited (Failed)")


def test_terminating_pods_do_not_count_as_problems() -> None:
    gone = waiting("b", "ErrImagePull")
    gone["metadata"]["deletionTimestamp"] = NOW
    s = compute_status(worker(1), deployment(replicas=1, updatedReplicas=1), [gone], None, NOW)
    assert triples(s) == {
        "Ready": ("False", "PodsStarting", "0/1 pods ready: waiting for the Deployment to report ready pods"),
        "Progressing": ("True", "ScalingUp", "0/1 pods ready"),
        "Degraded": ("False", "AsExpected", "no problem seen"),
    }
    no_meta = {"status": {"phase": "Pending"}}
    assert triples(compute_status(worker(1), deployment(replicas=1), [no_meta], None, NOW))["Ready"] == (
        "False",
        "PodsPending",
        "0/1 pods ready: pod ? is pending",
    )


def test_scaled_to_zero_is_not_ready_and_converged_once_the_pods_are_gone() -> None:
    s = compute_status(worker(0), deployment(), [], None, NOW)
    assert triples(s) == {
        "Ready": ("False", "ScaledToZero", "spec.replicas is 0: no pods, no capacity"),
        "Progressing": ("False", "Converged", "0/0 pods ready, all on the current revision"),
        "Degraded": ("False", "AsExpected", "no problem seen"),
    }
    s = compute_status(
        worker(0), deployment(replicas=1, readyReplicas=1, availableReplicas=1, updatedReplicas=1), [], None, NOW
    )
    assert triples(s)["Progressing"] == ("True", "RollingOut", "1/0 pods on the current revision")
    assert triples(s)["Ready"] == ("False", "ScaledToZero", "spec.replicas is 0: no pods, no capacity")


def test_one_desired_pod_with_none_running_is_not_converged() -> None:
    s = compute_status(worker(1), deployment(), [], None, NOW)
    assert triples(s)["Progressing"] == ("True", "ScalingUp", "0/1 pods ready")


def test_without_a_deployment_it_is_being_created() -> None:
    s = compute_status(worker(), None, [], None, NOW)
    assert triples(s)["Progressing"] == ("True", "Creating", "creating the Deployment")
    assert triples(s)["Ready"] == (
        "False",
        "PodsStarting",
        "0/2 pods ready: waiting for the Deployment to report ready pods",
    )


def test_conditions_keep_their_transition_time_while_their_status_holds() -> None:
    first = compute_status(worker(), deployment(), [], None, NOW)
    full = {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "updatedReplicas": 2}
    later = compute_status(worker(generation=5), deployment(**full), [], first, LATER)
    times = {c["type"]: c["lastTransitionTime"] for c in later["conditions"]}
    # Ready and Progressing flipped; Degraded stayed False.
    assert times == {"Ready": LATER, "Progressing": LATER, "Degraded": NOW}
    assert {c["observedGeneration"] for c in later["conditions"]} == {5} and later["observedGeneration"] == 5


def test_conditions_and_orchestrators_owned_elsewhere_are_kept() -> None:
    registered = {"type": "Registered", "status": "True", "reason": "AllRegistered", "message": "m"}
    previous = {"conditions": [registered, {"status": "True"}], "orchestrators": [{"url": "https://o"}]}
    s = compute_status(worker(), None, [], previous, NOW)
    assert s["conditions"][3:] == [registered]
    assert s["orchestrators"] == [{"url": "https://o"}]
    assert "orchestrators" not in compute_status(worker(), None, [], {"conditions": []}, NOW)


# -- orchestrator entries, as the status subresource holds them -------------------------------------------------

WRITTEN = {
    "url": "https://o1",
    "registered": True,
    "since": NOW,
    "capacity": 2,
    "runners": 1,
    "lastError": "timeout",
    "heldBy": "team-a/w",
}


def test_an_entry_is_written_in_camel_case_with_unset_fields_left_out() -> None:
    full = api.OrchestratorStatus(
        url="https://o1", registered=True, since=NOW, capacity=2, runners=1, last_error="timeout", held_by="team-a/w"
    )
    assert entry_json(full) == WRITTEN
    assert entry_json(api.OrchestratorStatus(url="https://o2")) == {
        "url": "https://o2",
        "registered": False,
        "capacity": 0,
    }


def test_entries_are_read_back_as_written_and_one_that_does_not_parse_is_left_out() -> None:
    status = {"orchestrators": [WRITTEN, {"registered": True}, {"url": "https://o2", "runners": "many"}, {"url": "u"}]}
    assert orchestrator_entries(status) == [
        api.OrchestratorStatus(
            url="https://o1",
            registered=True,
            since=NOW,
            capacity=2,
            runners=1,
            last_error="timeout",
            held_by="team-a/w",
        ),
        api.OrchestratorStatus(url="u"),
    ]
    assert orchestrator_entries(None) == orchestrator_entries({}) == orchestrator_entries({"orchestrators": None}) == []


# -- with_registration -------------------------------------------------------------------------------------------


def _registered(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == "Registered")


def test_with_registration_adds_the_entries_and_the_condition() -> None:
    base = {"conditions": [{"type": "Ready", "status": "True"}], "capacity": 4, "endpoint": "http://w.ns.svc:8000"}
    entries = [api.OrchestratorStatus(url="https://o1", registered=True)]
    out = with_registration(base, entries, ["o1"], deleting=False, now=NOW, generation=3)
    assert out["orchestrators"] == [{"url": "https://o1", "registered": True, "capacity": 0}]
    assert out["endpoint"] == "http://w.ns.svc:8000"
    assert [c["type"] for c in out["conditions"]] == ["Ready", "Registered"]
    assert _registered(out) == {
        "type": "Registered",
        "status": "True",
        "reason": "AllRegistered",
        "message": "registered with 1 orchestrator(s), capacity 4",
        "lastTransitionTime": NOW,
        "observedGeneration": 3,
    }
    assert base == {
        "conditions": [{"type": "Ready", "status": "True"}],
        "capacity": 4,
        "endpoint": "http://w.ns.svc:8000",
    }


def test_with_registration_replaces_the_old_condition_and_keeps_its_time_while_it_holds() -> None:
    entries = [api.OrchestratorStatus(url="https://o1", registered=True)]
    first = with_registration({"capacity": 2}, entries, [], deleting=False, now=NOW, generation=1)
    again = with_registration(first, entries, [], deleting=False, now=LATER, generation=2)
    assert [c["type"] for c in again["conditions"]] == ["Registered"]
    assert _registered(again)["lastTransitionTime"] == NOW and _registered(again)["observedGeneration"] == 2


def test_with_registration_without_targets_or_entries_drops_the_list() -> None:
    out = with_registration({"orchestrators": [{"url": "x"}]}, [], [], deleting=False, now=NOW, generation=1)
    assert "orchestrators" not in out
    assert (_registered(out)["status"], _registered(out)["reason"]) == ("False", "NoOrchestrators")
    kept = with_registration({}, [], ["o1"], deleting=False, now=NOW, generation=1)
    assert kept["orchestrators"] == []


def test_with_registration_adds_the_note_only_while_registering() -> None:
    waiting_entries = [api.OrchestratorStatus(url="https://o1", registered=False)]
    out = with_registration({"capacity": 2}, waiting_entries, [], deleting=False, now=NOW, generation=1, note="try 2")
    assert _registered(out)["message"] == "1/1 orchestrator(s) do not list it yet: https://o1; try 2"
    done = [api.OrchestratorStatus(url="https://o1", registered=True)]
    out = with_registration({"capacity": 2}, done, [], deleting=False, now=NOW, generation=1, note="try 2")
    assert _registered(out)["message"] == "registered with 1 orchestrator(s), capacity 2"


def test_with_registration_routed_uses_the_router_slots_and_address() -> None:
    entries = [api.OrchestratorStatus(url="https://o1", registered=True)]
    address = Address("https://w.example:443", True)
    out = with_registration(
        {"capacity": 2, "endpoint": "http://w.ns.svc:8000"},
        entries,
        [],
        deleting=False,
        now=NOW,
        generation=1,
        slots=Slots(3, 1),
        routed=True,
        address=address,
    )
    assert out["endpoint"] == "https://w.example:443"
    assert (
        _registered(out)["message"]
        == "registered with 1 orchestrator(s), capacity 2; routers: 3 free, 1 streams running"
    )
    unreachable = with_registration({"capacity": 2}, entries, [], deleting=False, now=NOW, generation=1, routed=True)
    assert (_registered(unreachable)["status"], _registered(unreachable)["reason"]) == ("False", "RoutersUnreachable")
    pending = with_registration(
        {"capacity": 2, "endpoint": "e"},
        entries,
        [],
        deleting=False,
        now=NOW,
        generation=1,
        address=Address(None, False, "waiting for a load balancer"),
    )
    assert pending["endpoint"] == "e"
    assert _registered(pending)["message"] == "not registered yet: waiting for a load balancer"


def test_with_registration_while_deleting() -> None:
    entries = [api.OrchestratorStatus(url="https://o1", registered=True)]
    out = with_registration({"capacity": 2}, entries, [], deleting=True, now=NOW, generation=1)
    assert (_registered(out)["status"], _registered(out)["reason"], _registered(out)["message"]) == (
        "False",
        "Unregistering",
        "the worker is being deleted",
    )


# -- invalid_spec_status -----------------------------------------------------------------------------------------


def test_invalid_spec_keeps_the_rest_of_the_status_and_sets_all_three_conditions() -> None:
    old_ready = {"type": "Ready", "status": "False", "reason": "X", "message": "", "lastTransitionTime": NOW}
    body = {"metadata": {"generation": 7}, "status": {"capacity": 4, "conditions": [old_ready, {"status": "odd"}]}}
    s = invalid_spec_status(body, "spec.gpu.count: bad", LATER)
    assert s["capacity"] == 4 and s["observedGeneration"] == 7
    assert s["conditions"] == [
        {
            "type": t,
            "status": st,
            "reason": "InvalidSpec",
            "message": "spec.gpu.count: bad",
            "lastTransitionTime": when,
            "observedGeneration": 7,
        }
        for t, st, when in (("Ready", "False", NOW), ("Progressing", "False", LATER), ("Degraded", "True", LATER))
    ]
    other = invalid_spec_status({"metadata": {}}, "held by ns/x", NOW, reason="NameConflict")
    assert other["observedGeneration"] == 0
    assert triples(other) == {
        t: (st, "NameConflict", "held by ns/x")
        for t, st in (("Ready", "False"), ("Progressing", "False"), ("Degraded", "True"))
    }


# -- transitions, same_status, is_worker_pod ---------------------------------------------------------------------


def cond(type_: str, status: str, reason: str, message: str = "m") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def test_events_for_later_conditions_follow_an_unchanged_one() -> None:
    before = {"conditions": [cond("Ready", "False", "PodsStarting"), cond("Degraded", "False", "AsExpected")]}
    after = {"conditions": [cond("Ready", "False", "PodsStarting"), cond("Degraded", "True", "ImagePullError", "pull")]}
    assert transitions(before, after) == [("Warning", "ImagePullError", "pull")]


def test_each_kind_of_event() -> None:
    before = {"conditions": [cond("Ready", "True", "AllPodsReady"), cond("Degraded", "True", "CrashLoop")]}
    after = {"conditions": [cond("Ready", "False", "PodsStarting", ""), cond("Degraded", "False", "AsExpected")]}
    assert transitions(before, after) == [
        ("Warning", "NotReady", "PodsStarting"),
        ("Normal", "Recovered", "no longer degraded (was CrashLoop)"),
    ]
    assert transitions(after, before) == [("Normal", "Ready", "m"), ("Warning", "CrashLoop", "m")]
    assert transitions(None, {"conditions": [cond("Ready", "True", "AllPodsReady", "2/2")]}) == [
        ("Normal", "Ready", "2/2")
    ]


def test_no_event_for_progressing_or_for_a_not_ready_that_was_not_ready() -> None:
    before = {"conditions": [cond("Ready", "False", "PodsPending"), cond("Progressing", "True", "ScalingUp")]}
    after = {"conditions": [cond("Ready", "False", "PodsStarting"), cond("Progressing", "False", "Converged")]}
    assert transitions(before, after) == []


def test_a_changed_reason_with_the_same_status_is_a_transition() -> None:
    before = {"conditions": [cond("Degraded", "True", "ImagePullError")]}
    after = {"conditions": [cond("Degraded", "True", "CrashLoop", "crash")]}
    assert transitions(before, after) == [("Warning", "CrashLoop", "crash")]


def test_same_status() -> None:
    assert same_status(None, {}) and same_status({"a": 1}, {"a": 1})
    assert not same_status({"a": 1}, {"a": 2}) and not same_status(None, {"a": 1})


def test_is_worker_pod() -> None:
    key = "app.kubernetes.io/component"
    assert is_worker_pod({"metadata": {"labels": {key: "worker"}}})
    assert is_worker_pod({"metadata": {"labels": {"other": "router"}}}) and is_worker_pod({})
    assert not is_worker_pod({"metadata": {"labels": {key: "router"}}})


def test_with_registration_without_a_capacity_has_none_to_advertise() -> None:
    out = with_registration(
        {}, [api.OrchestratorStatus(url="https://o1", registered=True)], [], deleting=False, now=NOW, generation=1
    )
    assert (_registered(out)["status"], _registered(out)["reason"]) == ("False", "NoCapacity")
    assert "orchestrators" in out
    bare = with_registration({}, [], [], deleting=False, now=NOW, generation=1)
    assert "orchestrators" not in bare and (_registered(bare)["reason"]) == "NoOrchestrators"


def test_invalid_spec_on_a_new_object_stamps_every_condition_now() -> None:
    s = invalid_spec_status({"metadata": {"generation": 1}}, "bad", LATER)
    assert [(c["lastTransitionTime"], c["observedGeneration"]) for c in s["conditions"]] == [(LATER, 1)] * 3
