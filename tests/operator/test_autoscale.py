"""The autoscaler's decisions: pure functions, every branch."""

from __future__ import annotations

from typing import Any

import pytest
from byoc_operator import api
from byoc_operator.autoscale import PodSessions, active_sessions, decide, deletion_costs, needed_replicas, pod_ip

POLICY = api.Autoscaling(min_replicas=1, max_replicas=6, target_busy_percent=50, scale_down_delay_seconds=60)


def pods(*active: int | None) -> list[PodSessions]:
    return [PodSessions(f"p{i}", a) for i, a in enumerate(active)]


@pytest.mark.parametrize(
    "busy,slots,want",
    [(0, 1, 1), (1, 1, 2), (2, 2, 2), (3, 2, 3), (5, 1, 6), (50, 1, 6)],
)
def test_needed_replicas_aims_at_the_target_share_within_bounds(busy: int, slots: int, want: int) -> None:
    assert needed_replicas(POLICY, busy, slots) == want


def test_scale_up_is_immediate() -> None:
    d = decide(POLICY, 2, pods(1, 1), 1, None, now=100)
    assert d.replicas == 4 and d.low_since is None and "scaled up: 2 of 2 session slots busy" in d.reason


def test_scale_down_waits_for_the_delay_then_removes_only_idle_pods() -> None:
    # 4 pods, one busy: 2 needed, but not before demand stayed low for 60 s.
    first = decide(POLICY, 4, pods(1, 0, 0, 0), 1, None, now=100)
    assert first.replicas == 4 and first.low_since == 100
    waiting = decide(POLICY, 4, pods(1, 0, 0, 0), 1, first.low_since, now=159)
    assert waiting.replicas == 4 and waiting.low_since == 100
    done = decide(POLICY, 4, pods(1, 0, 0, 0), 1, waiting.low_since, now=160)
    assert done.replicas == 2 and done.low_since is None and done.reason.startswith("scaled down")


def test_demand_back_up_resets_the_scale_down_clock() -> None:
    low = decide(POLICY, 2, pods(0, 0), 1, None, now=0)
    assert low.low_since == 0
    back = decide(POLICY, 2, pods(1, 0), 1, low.low_since, now=30)
    assert back.replicas == 2 and back.low_since is None


def test_never_removes_more_pods_than_are_idle() -> None:
    # 3 busy slots of 6, target 50%: 3 pods are enough by the numbers... with 2 slots each only 2 are needed,
    # but only one pod is idle, so only one goes.
    policy = POLICY.model_copy(update={"target_busy_percent": 100})
    d = decide(policy, 3, pods(2, 1, 0), 2, 0, now=1000)
    assert d.replicas == 2
    stuck = decide(policy, 2, pods(1, 1), 2, 0, now=1000)
    assert stuck.replicas == 2 and "no idle pod" in stuck.reason


def test_unanswered_pods_count_as_full_and_are_never_idle() -> None:
    d = decide(POLICY, 2, pods(None, 0), 1, 0, now=1000)
    assert d.replicas == 2  # the silent pod needs 2 by itself at 50%
    policy = POLICY.model_copy(update={"target_busy_percent": 100})
    assert decide(policy, 2, pods(None, None), 1, 0, now=1000).replicas == 2


def test_pods_not_ready_yet_may_go_first() -> None:
    # 3 replicas but only one pod answers (two are still starting): scale down to 1 removes the starting ones.
    d = decide(POLICY, 3, pods(0), 1, 0, now=1000)
    assert d.replicas == 1


def test_replicas_outside_bounds_are_brought_back() -> None:
    assert decide(POLICY, 9, pods(0), 1, None, now=0).replicas == 6
    assert decide(POLICY, 0, [], 1, None, now=0).replicas == 1


def test_deletion_costs_mark_busy_pods_and_clear_idle_ones_only_on_change() -> None:
    sessions = pods(2, 0, None, 0)
    current = {"p0": None, "p1": "3", "p2": "1", "p3": None}
    assert deletion_costs(sessions, current) == {"p0": "2", "p1": None}
    assert deletion_costs(sessions, {"p0": "2", "p1": None, "p2": "1"}) == {}


@pytest.mark.parametrize(
    "body,want",
    [
        ({"status": "OK", "active_streams": 3, "capacity": 4}, 3),
        ({"status": "IDLE"}, 0),
        ({"status": "OK"}, 1),
        ({"status": "LOADING"}, None),
        ({"status": "OK", "active_streams": -1}, 1),
        ({"active_streams": True, "status": "IDLE"}, 0),
        ("not a dict", None),
    ],
)
def test_active_sessions_from_health(body: Any, want: int | None) -> None:
    assert active_sessions(body) == want


def test_only_ready_pods_that_are_not_terminating_are_asked() -> None:
    ready = {
        "metadata": {"name": "a"},
        "status": {"podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert pod_ip(ready) == "10.0.0.1"
    assert pod_ip({**ready, "metadata": {"name": "a", "deletionTimestamp": "x"}}) is None
    assert pod_ip({"metadata": {"name": "b"}, "status": {"podIP": "10.0.0.2"}}) is None
