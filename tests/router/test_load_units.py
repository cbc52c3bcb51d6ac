"""router/load.py: every parsed field changes the answer (capacity below sessionsPerPod, active_streams that
disagrees with the sessions listed, PyTrickle's client_running and current_params, draining on every shape)."""

from __future__ import annotations

import pytest
from byoc_edge.router.load import ERROR, IDLE, LOADING, OK, UNKNOWN, PodLoad, parse_health, parse_status


def test_our_status_takes_the_reported_count_over_the_sessions_listed() -> None:
    data = {
        "state": "OK",
        "active_streams": 3,
        "capacity": 2,
        "draining": True,
        "sessions": [{"stream_id": "s1", "gateway_request_id": "g1"}, {"stream_id": "", "gateway_request_id": None}, 7],
    }
    assert parse_status(data) == PodLoad(OK, 3, 2, (frozenset({"s1", "g1"}),), True, True)


def test_our_status_without_a_count_counts_the_named_sessions() -> None:
    data = {"state": "ok", "sessions": [{"stream_id": "s1"}, {"gateway_request_id": "g2"}]}
    assert parse_status(data) == PodLoad(OK, 2, None, (frozenset({"s1"}), frozenset({"g2"})), True, False)


@pytest.mark.parametrize("bad", [-1, True, "2", 1.5, None])
def test_counts_that_are_not_natural_numbers_are_ignored(bad: object) -> None:
    data = {"state": "OK", "active_streams": bad, "capacity": bad, "sessions": [{"stream_id": "s1"}]}
    assert parse_status(data) == PodLoad(OK, 1, None, (frozenset({"s1"}),), True, False)


def test_zero_is_a_count() -> None:
    assert parse_status({"state": "OK", "active_streams": 0, "capacity": 0, "sessions": []}) == PodLoad(
        OK, 0, 0, (), True, False
    )


def test_pytrickle_running_stream_is_named_by_its_gateway_request_id() -> None:
    data = {"state": "OK", "client_running": True, "current_params": {"gateway_request_id": "g1"}, "capacity": 1}
    assert parse_status(data) == PodLoad(OK, 1, 1, (frozenset({"g1"}),), True, False)


def test_pytrickle_with_a_count_and_a_stopped_client_names_nothing() -> None:
    data = {"state": "OK", "active_streams": 1, "client_running": False, "current_params": {"gateway_request_id": "g1"}}
    assert parse_status(data) == PodLoad(OK, 1, None, (), False, False)


def test_pytrickle_without_client_running_infers_it_from_the_count() -> None:
    params = {"current_params": {"gateway_request_id": "g1"}}
    assert parse_status({"state": "IDLE", "active_streams": 0, **params}) == PodLoad(IDLE, 0, None, (), True, False)
    assert parse_status({"state": "IDLE", "active_streams": 2, **params}) == PodLoad(
        IDLE, 2, None, (frozenset({"g1"}),), True, False
    )


def test_pytrickle_without_a_count_is_busy_when_ok_and_draining_is_read() -> None:
    assert parse_status({"state": "OK", "draining": True}) == PodLoad(OK, 1, None, (), False, True)
    assert parse_status({"state": "IDLE", "draining": "yes"}) == PodLoad(IDLE, 0, None, (), True, False)
    assert parse_status({"state": "OK", "current_params": "g1"}) == PodLoad(OK, 1, None, (), False, False)


@pytest.mark.parametrize(
    ("data", "state"),
    [
        ({"state": "loading"}, LOADING),
        ({"status": "ERROR"}, ERROR),
        ({"state": "busy"}, UNKNOWN),
        ({"state": 3}, UNKNOWN),
        ({"state": "", "status": "IDLE"}, IDLE),
    ],
)
def test_state_from_state_or_status(data: dict[str, object], state: str) -> None:
    assert parse_status(data).state == state and parse_health(data).state == state


@pytest.mark.parametrize("data", [None, [], "OK"])
def test_payloads_that_are_not_objects_are_unknown(data: object) -> None:
    assert parse_status(data) == PodLoad(UNKNOWN, 0, None) == parse_health(data)


def test_health_with_counts_and_draining() -> None:
    data = {"status": "OK", "active_streams": 2, "capacity": 3, "draining": True}
    assert parse_health(data) == PodLoad(OK, 2, 3, (), False, True)
    assert parse_health({"status": "OK", "active_streams": 0}) == PodLoad(OK, 0, None, (), True, False)


def test_health_without_counts_is_one_stream_when_ok() -> None:
    assert parse_health({"status": "OK"}) == PodLoad(OK, 1, None, (), False, False)
    assert parse_health({"status": "IDLE"}) == PodLoad(IDLE, 0, None, (), True, False)


def test_free_slots_are_bounded_by_the_pod_capacity_and_sessions_per_pod() -> None:
    assert PodLoad(OK, 0, 1).free(4) == 1 and PodLoad(OK, 0, 6).free(4) == 4 and PodLoad(OK, 1, None).free(4) == 3
    assert PodLoad(OK, 5, 2).free(4) == 0
    assert PodLoad(LOADING, 0, None).free(4) == 0 and PodLoad(ERROR, 0, None).free(4) == 0
    assert PodLoad(IDLE, 0, None, draining=True).free(4) == 0 and PodLoad(UNKNOWN, 0, None).free(4) == 4
    assert PodLoad(OK, 0, 1).slots(4) == 1 and PodLoad(OK, 0, None).slots(4) == 4


def test_started_and_stopped_streams_move_the_state() -> None:
    a, b = frozenset({"a", "ga"}), frozenset({"b"})
    idle = PodLoad(IDLE, 0, 2, (), True)
    one = idle.with_started(a)
    assert one == PodLoad(OK, 1, 2, (a,), True)
    assert PodLoad(LOADING, 0, 2).with_started(b) == PodLoad(LOADING, 1, 2, (b,))
    two = one.with_started(b)
    assert two.with_stopped("ga") == PodLoad(OK, 1, 2, (b,), True)
    assert one.with_stopped("a") == PodLoad(IDLE, 0, 2, (), True)
    assert PodLoad(IDLE, 0, 2).with_stopped("x") == PodLoad(IDLE, 0, 2)
    assert PodLoad(ERROR, 1, 2, (a,)).with_stopped("a") == PodLoad(ERROR, 0, 2)


def test_a_refused_start_marks_the_pod_full_and_its_streams_unknown() -> None:
    a = frozenset({"a"})
    assert PodLoad(OK, 1, 3, (a,), True).full(4) == PodLoad(OK, 3, 3, (a,), False)
    assert PodLoad(OK, 5, None, (a,), True).full(4) == PodLoad(OK, 5, None, (a,), False)


def test_pytrickle_with_one_stream_and_no_client_running_names_it() -> None:
    data = {"state": "OK", "active_streams": 1, "current_params": {"gateway_request_id": "g1"}}
    assert parse_status(data) == PodLoad(OK, 1, None, (frozenset({"g1"}),), True, False)
