"""router/placement.py: start order and totals with pods whose every attribute matters."""

from __future__ import annotations

from byoc_edge.router.load import ERROR, IDLE, LOADING, OK, PodLoad
from byoc_edge.router.placement import Pod, start_order, totals


def test_an_error_pod_does_not_hide_the_pods_after_it() -> None:
    pods = [Pod("err", PodLoad(ERROR, 0, None)), Pod("free", PodLoad(IDLE, 0, None)), Pod("unknown")]
    assert start_order(pods, 2) == ["free", "unknown"]


def test_most_free_first_then_unknown_then_loading_in_list_order() -> None:
    pods = [
        Pod("load1", PodLoad(LOADING, 0, None)),
        Pod("one", PodLoad(OK, 3, None)),
        Pod("unk1"),
        Pod("three", PodLoad(OK, 1, None)),
        Pod("full", PodLoad(OK, 4, None)),
        Pod("one-b", PodLoad(OK, 0, 1)),
        Pod("load2", PodLoad(LOADING, 0, None)),
        Pod("unk2"),
        Pod("gone", PodLoad(IDLE, 0, None), accepting=False),
        Pod("draining", PodLoad(IDLE, 0, None, draining=True)),
    ]
    assert start_order(pods, 4) == ["three", "one", "one-b", "unk1", "unk2", "load1", "load2"]


def test_reserved_starts_use_up_free_slots() -> None:
    pods = [Pod("a", PodLoad(IDLE, 0, None), reserved=2), Pod("b", PodLoad(OK, 1, None))]
    assert start_order(pods, 3) == ["b", "a"]
    assert Pod("a", PodLoad(IDLE, 0, None), reserved=2).free(3) == 1
    assert Pod("a", PodLoad(IDLE, 0, None), reserved=5).free(3) == 0
    assert start_order([Pod("a", PodLoad(IDLE, 0, None), reserved=3)], 3) == []
    assert Pod("a").free(3) is None


def test_pod_flags() -> None:
    assert Pod("a").takes_streams and Pod("a").reachable
    assert not Pod("a", failures=1).reachable
    assert not Pod("a", accepting=False).takes_streams
    assert not Pod("a", PodLoad(OK, 0, None, draining=True)).takes_streams
    assert Pod("a", PodLoad(OK, 0, None)).takes_streams


def test_totals_count_known_pods_that_take_streams() -> None:
    pods = [
        Pod("a", PodLoad(OK, 1, 2)),
        Pod("b", PodLoad(OK, 2, None)),
        Pod("err", PodLoad(ERROR, 1, None)),
        Pod("unknown"),
        Pod("gone", PodLoad(OK, 1, None), accepting=False),
        Pod("loading", PodLoad(LOADING, 0, None)),
    ]
    assert totals(pods, 3) == (2 + 3 + 3, 1 + 2 + 0)
    assert totals([], 3) == (0, 0)


def test_a_departing_or_draining_pod_does_not_hide_the_pods_after_it() -> None:
    pods = [
        Pod("gone", PodLoad(IDLE, 0, None), accepting=False),
        Pod("draining", PodLoad(IDLE, 0, None, draining=True)),
        Pod("free", PodLoad(IDLE, 0, None)),
    ]
    assert start_order(pods, 2) == ["free"]
