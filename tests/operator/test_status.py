"""Status is computed from what the cluster shows; these cases are the ones users meet."""

from __future__ import annotations

from byoc_operator.render import Worker
from byoc_operator.status import compute_status, pod_problem, transitions

NOW, LATER = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def worker(replicas: int = 2, sessions: int = 2) -> Worker:
    return Worker.from_body(
        {
            "metadata": {"name": "w", "namespace": "ns", "uid": "u", "generation": 4},
            "spec": {"replicas": replicas, "sessionsPerPod": sessions},
        },
        "img",
    )


def deployment(ready: int, replicas: int = 2, updated: int | None = None, generation: int = 1) -> dict:
    return {
        "metadata": {"name": "w", "generation": generation},
        "status": {
            "observedGeneration": generation,
            "replicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "updatedReplicas": replicas if updated is None else updated,
        },
    }


def ready_pod(name: str) -> dict:
    return {
        "metadata": {"name": name},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def pending_pod(name: str, message: str) -> dict:
    return {
        "metadata": {"name": name},
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}],
        },
    }


def waiting_pod(name: str, reason: str, **extra: object) -> dict:
    cs = {"name": "worker", "image": "bad:1", "ready": False, "state": {"waiting": {"reason": reason}}, **extra}
    return {
        "metadata": {"name": name},
        "status": {"phase": "Pending" if "Pull" in reason else "Running", "containerStatuses": [cs]},
    }


def conds(status: dict) -> dict:
    return {c["type"]: c for c in status["conditions"]}


def test_all_pods_ready_is_ready_with_capacity() -> None:
    s = compute_status(worker(), deployment(2), [ready_pod("a"), ready_pod("b")], None, NOW)
    c = conds(s)
    assert (c["Ready"]["status"], c["Ready"]["reason"]) == ("True", "AllPodsReady")
    assert c["Progressing"]["status"] == "False" and c["Degraded"]["status"] == "False"
    assert s["capacity"] == 4 and s["ready"] == "2/2" and s["observedGeneration"] == 4
    assert (
        s["selector"] == "byoc.livepeer.org/worker=w,app.kubernetes.io/component=worker"
        and s["endpoint"] == "http://w.ns.svc:8000"
    )


def test_pending_for_lack_of_gpus_has_its_own_reason_and_the_scheduler_message() -> None:
    msg = "0/5 nodes are available: 5 Insufficient nvidia.com/gpu."
    s = compute_status(worker(), deployment(1), [ready_pod("a"), pending_pod("b", msg)], None, NOW)
    c = conds(s)
    assert c["Ready"]["status"] == "False" and c["Degraded"]["status"] == "True"
    assert c["Degraded"]["reason"] == "InsufficientGPU" and msg in c["Degraded"]["message"]
    assert s["capacity"] == 2  # the ready pod still serves


def test_other_unschedulable_reasons_are_not_blamed_on_gpus() -> None:
    s = compute_status(
        worker(), deployment(0), [pending_pod("a", "0/5 nodes: node(s) didn't match selector")], None, NOW
    )
    assert conds(s)["Degraded"]["reason"] == "Unschedulable"


def test_image_pull_error_and_crash_loop_have_their_own_reasons() -> None:
    s = compute_status(worker(), deployment(0), [waiting_pod("a", "ImagePullBackOff")], None, NOW)
    assert conds(s)["Degraded"]["reason"] == "ImagePullError" and conds(s)["Ready"]["status"] == "False"
    crash = waiting_pod(
        "a", "CrashLoopBackOff", restartCount=4, lastState={"terminated": {"exitCode": 1, "reason": "Error"}}
    )
    s = compute_status(worker(), deployment(0), [crash], None, NOW)
    assert conds(s)["Degraded"]["reason"] == "CrashLoop"
    assert "restarted 4 times" in conds(s)["Degraded"]["message"] and "exit code 1" in conds(s)["Degraded"]["message"]


def test_starting_pods_are_progressing_not_degraded() -> None:
    starting = {
        "metadata": {"name": "a"},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]},
    }
    s = compute_status(worker(), deployment(0), [starting], None, NOW)
    c = conds(s)
    assert c["Ready"]["status"] == "False" and c["Progressing"]["status"] == "True"
    assert c["Degraded"]["status"] == "False" and c["Progressing"]["reason"] == "PodsStarting"


def test_rollout_in_progress_is_not_ready() -> None:
    s = compute_status(worker(), deployment(2, updated=1), [ready_pod("a"), ready_pod("b")], None, NOW)
    assert conds(s)["Ready"]["status"] == "False"
    assert conds(s)["Progressing"]["reason"] == "RollingOut"


def test_stale_deployment_status_is_not_trusted() -> None:
    dep = deployment(2)
    dep["metadata"]["generation"] = 2  # the controller has not seen the latest spec yet
    s = compute_status(worker(), dep, [ready_pod("a"), ready_pod("b")], None, NOW)
    assert conds(s)["Ready"]["status"] == "False"


def test_scaled_to_zero() -> None:
    s = compute_status(worker(replicas=0), deployment(0, replicas=0), [], None, NOW)
    assert conds(s)["Ready"]["reason"] == "ScaledToZero" and s["capacity"] == 0
    assert conds(s)["Progressing"]["status"] == "False"


def test_missing_deployment_is_creating() -> None:
    s = compute_status(worker(), None, [], None, NOW)
    assert conds(s)["Progressing"]["reason"] == "Creating" and conds(s)["Ready"]["status"] == "False"


def test_unchanged_inputs_give_an_identical_status_so_nothing_is_written() -> None:
    first = compute_status(worker(), deployment(2), [ready_pod("a"), ready_pod("b")], None, NOW)
    again = compute_status(worker(), deployment(2), [ready_pod("a"), ready_pod("b")], first, LATER)
    assert again == first
    assert transitions(first, again) == []


def test_transition_time_moves_only_when_status_flips_and_events_say_why() -> None:
    ok = compute_status(worker(), deployment(2), [ready_pod("a"), ready_pod("b")], None, NOW)
    assert ("Normal", "Ready", "2/2 pods ready") in transitions(None, ok)
    crash = waiting_pod("b", "CrashLoopBackOff", restartCount=2)
    bad = compute_status(worker(), deployment(1), [ready_pod("a"), crash], ok, LATER)
    assert conds(bad)["Ready"]["lastTransitionTime"] == LATER
    kinds = {(t, r) for t, r, _ in transitions(ok, bad)}
    assert ("Warning", "CrashLoop") in kinds and ("Warning", "NotReady") in kinds
    healed = compute_status(worker(), deployment(2), [ready_pod("a"), ready_pod("b")], bad, LATER)
    assert ("Normal", "Recovered") in {(t, r) for t, r, _ in transitions(bad, healed)}


def test_registered_condition_owned_elsewhere_is_kept() -> None:
    prev = {
        "conditions": [{"type": "Registered", "status": "True", "reason": "AllRegistered", "message": ""}],
        "orchestrators": [{"url": "https://o", "registered": True}],
    }
    s = compute_status(worker(), deployment(2), [ready_pod("a"), ready_pod("b")], prev, NOW)
    assert "Registered" in conds(s) and s["orchestrators"] == prev["orchestrators"]


def test_terminating_pods_are_ignored_for_problems() -> None:
    gone = waiting_pod("x", "CrashLoopBackOff")
    gone["metadata"]["deletionTimestamp"] = NOW
    s = compute_status(worker(), deployment(2), [ready_pod("a"), ready_pod("b"), gone], None, NOW)
    assert conds(s)["Ready"]["status"] == "True"
    assert pod_problem(gone) is not None


def test_invalid_spec_is_degraded_with_the_message() -> None:
    from byoc_operator.status import invalid_spec_status

    body = {"metadata": {"generation": 7}, "status": {"capacity": 2}}
    s = invalid_spec_status(body, "invalid spec: spec.gpu.count: bad", NOW)
    c = conds(s)
    assert c["Degraded"]["status"] == "True" and c["Degraded"]["reason"] == "InvalidSpec"
    assert c["Ready"]["status"] == "False" and "spec.gpu.count" in c["Ready"]["message"]
    assert s["observedGeneration"] == 7 and s["capacity"] == 2
