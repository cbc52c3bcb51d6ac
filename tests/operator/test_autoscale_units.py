"""autoscale.py's pure part, pinned down: whole decisions (replicas, clock, reason), the idle bound when it is the
one that binds, deletion costs for a 1-stream pod and after an unanswered pod, and /health and pod readiness."""

from __future__ import annotations

import pytest
from byoc_operator import api
from byoc_operator.autoscale import (
    DELETION_COST,
    Decision,
    PodSessions,
    active_sessions,
    decide,
    deletion_costs,
    needed_replicas,
    pod_ip,
)

POLICY = api.Autoscaling(min_replicas=1, max_replicas=6, target_busy_percent=50, scale_down_delay_seconds=60)


def pods(*active: int | None) -> list[PodSessions]:
    return [PodSessions(f"p{i}", a) for i, a in enumerate(active)]


def test_the_cost_annotation_is_the_one_the_replicaset_controller_reads() -> None:
    assert DELETION_COST == "controller.kubernetes.io/pod-deletion-cost"


@pytest.mark.parametrize(("busy", "slots", "want"), [(3, 4, 2), (4, 4, 2), (5, 4, 3), (0, 4, 1), (7, 3, 5)])
def test_needed_replicas_rounds_up(busy: int, slots: int, want: int) -> None:
    assert needed_replicas(POLICY, busy, slots) == want


def test_needed_replicas_with_a_zero_minimum() -> None:
    policy = api.Autoscaling(min_replicas=0, max_replicas=3, target_busy_percent=100)
    assert needed_replicas(policy, 0, 2) == 0 and needed_replicas(policy, 3, 2) == 2


def test_scale_up_reason() -> None:
    assert decide(POLICY, 2, pods(2, 1), 2, 50.0, now=100) == Decision(
        3, None, "scaled up: 3 of 4 session slots busy (target 50%)"
    )


def test_steady_demand_keeps_replicas_and_stops_the_clock() -> None:
    assert decide(POLICY, 2, pods(1, 1), 2, 50.0, now=100) == Decision(
        2, None, "2 of 4 session slots busy (target 50%)"
    )


def test_low_demand_starts_then_keeps_the_clock() -> None:
    assert decide(POLICY, 3, pods(1, 0, 0), 2, None, now=100) == Decision(
        3, 100, "1 of 6 session slots busy (target 50%)"
    )
    assert decide(POLICY, 3, pods(1, 0, 0), 2, 100, now=159.5) == Decision(
        3, 100, "1 of 6 session slots busy (target 50%)"
    )


def test_scale_down_is_bounded_by_the_idle_pods() -> None:
    # 5 pods, 4 slots each, 3 busy slots: 2 pods needed, but only 2 are idle, so 5 -> 3.
    assert decide(POLICY, 5, pods(1, 0, 1, 0, 1), 4, 0, now=60) == Decision(
        3, None, "scaled down: 3 of 20 session slots busy (target 50%)"
    )


def test_no_idle_pod_to_remove_keeps_the_clock() -> None:
    assert decide(POLICY, 3, pods(1, 1, 1), 4, 10, now=100) == Decision(
        3, 10, "3 of 12 session slots busy (target 50%); no idle pod to remove"
    )


def test_pods_not_ready_yet_count_as_removable() -> None:
    assert decide(POLICY, 4, pods(1, 1), 4, 0, now=100) == Decision(
        2, None, "scaled down: 2 of 8 session slots busy (target 50%)"
    )


def test_unanswered_pods_count_as_full_and_are_named_in_the_reason() -> None:
    assert decide(POLICY, 2, pods(None, 0), 2, None, now=100) == Decision(
        2, None, "2 of 4 session slots busy (target 50%); 1 pod(s) did not answer /health and count as full"
    )


def test_replicas_out_of_bounds_come_back_first() -> None:
    assert decide(POLICY, 9, pods(0), 1, 5, now=100) == Decision(6, None, "replicas brought within [1, 6]")
    assert decide(POLICY, 0, [], 1, 5, now=100) == Decision(1, None, "replicas brought within [1, 6]")


def test_deletion_costs_for_one_stream_and_after_an_unanswered_pod() -> None:
    sessions = [PodSessions("a", None), PodSessions("b", 1), PodSessions("c", 0), PodSessions("d", 3)]
    assert deletion_costs(sessions, {"a": "5", "c": "2", "d": "3"}) == {"b": "1", "c": None}
    assert deletion_costs(sessions, {"b": "1", "d": "3"}) == {}


@pytest.mark.parametrize(
    ("body", "want"),
    [
        ({"active_streams": 0, "status": "OK"}, 0),
        ({"active_streams": 2}, 2),
        ({"active_streams": -1, "status": "OK"}, 1),
        ({"active_streams": True, "status": "idle"}, 0),
        ({"status": "LOADING"}, None),
        ({}, None),
        ("OK", None),
    ],
)
def test_active_sessions(body: object, want: int | None) -> None:
    assert active_sessions(body) == want


def test_pod_ip_only_for_ready_pods_not_terminating() -> None:
    def pod(conditions: list[dict[str, str]], **meta: str) -> dict[str, object]:
        return {"metadata": {"name": "p", **meta}, "status": {"podIP": "10.0.0.1", "conditions": conditions}}

    ready = [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}]
    assert pod_ip(pod(ready)) == "10.0.0.1"
    assert pod_ip(pod([{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}])) is None
    assert pod_ip(pod([{"type": "ContainersReady", "status": "True"}])) is None
    assert pod_ip(pod(ready, deletionTimestamp="2026-01-01T00:00:00Z")) is None
    assert pod_ip({"metadata": {}, "status": None}) is None
