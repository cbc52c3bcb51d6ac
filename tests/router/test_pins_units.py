"""router/pins.py: pins hold every key of their stream, re-pinning moves all of them, and reconcile adds, moves
and drops pins by poll time."""

from __future__ import annotations

from byoc_edge.router.pins import PinTable


def test_a_pin_answers_to_all_its_keys_and_unpinning_one_drops_all() -> None:
    t = PinTable()
    pin = t.pin(["s", "g", ""], "pod-a", 1.0)
    assert (pin.pod, pin.keys, pin.pinned_at) == ("pod-a", {"s", "g"}, 1.0)
    assert t.get("s") == t.get("g") == "pod-a" and t.get("") is None and len(t) == 1
    assert t.only() is pin and list(t) == [pin]
    assert t.unpin("g") is pin
    assert t.get("s") is None and len(t) == 0 and t.only() is None
    assert t.unpin("g") is None


def test_re_pinning_a_key_moves_the_old_pins_other_keys_too() -> None:
    t = PinTable()
    t.pin(["s", "g"], "pod-a", 1.0)
    t.pin(["s"], "pod-b", 2.0)
    assert t.get("s") == "pod-b" and t.get("g") is None and len(t) == 1


def test_only_is_none_with_two_streams_and_per_pod_counts() -> None:
    t = PinTable()
    t.pin(["a"], "p1", 1.0)
    t.pin(["b", "gb"], "p1", 1.0)
    t.pin(["c"], "p2", 1.0)
    assert t.only() is None and len(t) == 3
    assert t.per_pod() == {"p1": 2, "p2": 1}


def test_unpin_pod_drops_every_pin_of_that_pod_only() -> None:
    t = PinTable()
    a, b = t.pin(["a", "ga"], "p1", 1.0), t.pin(["b"], "p1", 1.0)
    t.pin(["c"], "p2", 1.0)
    assert t.unpin_pod("p1") == [a, b]
    assert t.get("a") is None and t.get("ga") is None and t.get("b") is None and t.get("c") == "p2"
    assert t.unpin_pod("p1") == []


def test_reconcile_adds_keeps_moves_and_drops() -> None:
    t = PinTable()
    kept = t.pin(["k"], "p1", 1.0)
    t.pin(["m", "gm"], "p2", 1.0)
    t.pin(["old"], "p1", 1.0)
    fresh = t.pin(["new"], "p1", 9.0)  # placed while the poll was in flight
    assert t.reconcile("p1", [frozenset({"k"}), frozenset({"m"}), frozenset({"x", "gx"})], 5.0) == (2, 1)
    assert t.get("k") == "p1" and t._by_key["k"] is kept
    assert t.get("m") == t.get("gm") == "p1"  # moved with all its keys
    assert t.get("x") == t.get("gx") == "p1" and t._by_key["x"].pinned_at == 5.0
    assert t.get("old") is None and t._by_key["new"] is fresh


def test_a_pin_added_by_reconcile_is_dropped_by_a_later_one() -> None:
    t = PinTable()
    assert t.reconcile("p1", [frozenset({"x"})], 5.0) == (1, 0)
    assert t.reconcile("p1", [], 5.0) == (0, 0)  # not older than the poll that saw it
    assert t.reconcile("p1", [], 6.0) == (0, 1)
    assert len(t) == 0


def test_reconcile_merges_a_reported_stream_with_new_keys_into_one_pin() -> None:
    t = PinTable()
    t.pin(["s"], "p1", 1.0)
    assert t.reconcile("p1", [frozenset({"s", "g"})], 2.0) == (1, 0)
    assert t.get("g") == "p1" and t._by_key["s"] is t._by_key["g"] and len(t) == 1


def test_a_reported_stream_pinned_in_two_pieces_becomes_one_pin_with_every_key() -> None:
    t = PinTable()
    t.pin(["a", "a-alias"], "p2", 1.0)
    t.pin(["b", "b-alias"], "p3", 1.0)
    assert t.reconcile("p1", [frozenset({"a", "b"})], 5.0) == (1, 0)
    assert {t.get(k) for k in ("a", "b", "a-alias", "b-alias")} == {"p1"} and len(t) == 1
