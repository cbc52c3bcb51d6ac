"""A draining pod (our runtime says ``draining`` from its preStop hook on) keeps its streams but gets no new one."""

from __future__ import annotations

from byoc_edge.router.load import IDLE, OK, parse_health, parse_status
from byoc_edge.router.placement import Pod, start_order, totals


def test_draining_pod_is_left_out_of_placement_and_capacity() -> None:
    draining = parse_status({"state": "OK", "active_streams": 1, "capacity": 2, "draining": True,
                             "sessions": [{"stream_id": "s1", "gateway_request_id": "s1"}]})  # fmt: skip
    assert draining.draining and draining.free(2) == 0 and draining.streams == (frozenset({"s1"}),)
    assert draining.with_started(frozenset({"x"})).draining and draining.with_stopped("s1").draining
    assert draining.full(2).draining
    fresh = parse_status({"state": "IDLE", "active_streams": 0, "capacity": 2, "sessions": []})
    assert not fresh.draining and fresh.free(2) == 2
    pods = [Pod("http://a:8000", draining), Pod("http://b:8000", fresh)]
    assert not pods[0].takes_streams and pods[1].takes_streams
    assert start_order(pods, 2) == ["http://b:8000"]
    assert totals(pods, 2) == (2, 0)
    # Once it stops draining (a restart in place), it takes streams again.
    pods[0].load = parse_status({"state": IDLE, "active_streams": 0, "capacity": 2, "sessions": []})
    assert start_order(pods, 2) == ["http://a:8000", "http://b:8000"]


def test_draining_from_health_and_pytrickle_payloads() -> None:
    assert parse_health({"status": OK, "active_streams": 1, "capacity": 1, "draining": True}).draining
    assert not parse_health({"status": "IDLE"}).draining  # other images never say: the pod source decides
    assert not parse_status({"state": "IDLE", "active_streams": 0}).draining
