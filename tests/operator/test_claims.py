"""Who holds a capability name on an orchestrator (claims.py), and what the Registered condition says."""

from __future__ import annotations

from byoc_operator import api
from byoc_operator.claims import Claim, capability_of, holders
from byoc_operator.registration import registered_condition

A = "http://orch-a:8935"
B = "http://orch-b:8935"


def claim(ns: str, name: str, created: str, *urls: str, capability: str = "cap") -> Claim:
    return Claim(created, (ns, name), capability, frozenset(urls))


def test_the_worker_created_first_holds_the_name_in_any_namespace() -> None:
    first = claim("team-a", "w", "2026-01-01T00:00:00Z", A, B)
    later = claim("team-b", "w", "2026-01-02T00:00:00Z", A)
    assert holders(later, [first]) == {A: ("team-a", "w")}
    assert holders(first, [later]) == {}


def test_same_creation_time_is_ordered_by_namespace_then_name() -> None:
    one = claim("a", "z", "2026-01-01T00:00:00Z", A)
    two = claim("b", "a", "2026-01-01T00:00:00Z", A)
    assert holders(two, [one]) == {A: ("a", "z")}
    assert holders(one, [two]) == {}


def test_other_names_and_other_orchestrators_do_not_conflict() -> None:
    mine = claim("n", "late", "2026-01-03T00:00:00Z", A)
    others = [
        claim("n", "other-cap", "2026-01-01T00:00:00Z", A, capability="else"),
        claim("n", "other-orch", "2026-01-01T00:00:00Z", B),
    ]
    assert holders(mine, others) == {}


def test_the_earliest_of_several_is_named() -> None:
    mine = claim("n", "c", "2026-01-03T00:00:00Z", A)
    others = [claim("n", "b", "2026-01-02T00:00:00Z", A), claim("n", "a", "2026-01-01T00:00:00Z", A)]
    assert holders(mine, others) == {A: ("n", "a")}


def test_only_byoc_workers_claim_a_capability() -> None:
    assert capability_of({"spec": {"capability": {"name": "x"}, "registration": {"protocol": "byoc"}}}) == "x"
    assert capability_of({"spec": {"capability": {"name": "x"}, "registration": {"protocol": "live-runner"}}}) is None


def test_the_condition_names_the_holder() -> None:
    entries = [
        api.OrchestratorStatus(url=A, held_by="team-a/w"),
        api.OrchestratorStatus(url=B, registered=True, capacity=2),
    ]
    ok, reason, message = registered_condition(entries, 2, False)
    assert (ok, reason) == (False, "CapabilityConflict")
    assert f"{A}: held by BYOCWorker team-a/w (created first), not registered there" in message


def test_claims_that_do_not_compete_do_not_hide_one_that_does() -> None:
    mine = claim("n", "mine", "2026-01-03T00:00:00Z", A, B)
    others = [
        mine,
        claim("n", "other-cap", "2026-01-01T00:00:00Z", A, capability="else"),
        claim("n", "later", "2026-01-04T00:00:00Z", A),
        claim("n", "first", "2026-01-02T00:00:00Z", B),
    ]
    assert holders(mine, others) == {B: ("n", "first")}


def test_a_byoc_worker_without_a_capability_name_or_with_a_spec_that_does_not_parse_claims_none() -> None:
    assert capability_of({"spec": {"registration": {"protocol": "byoc"}}}) is None
    assert capability_of({"spec": {"capability": {"name": ""}, "registration": {"protocol": "byoc"}}}) is None
    assert (
        capability_of({"spec": {"capability": {"name": "x"}, "registration": {"protocol": "carrier-pigeon"}}}) is None
    )
    assert capability_of({"spec": {"capability": {"name": "x"}}}) == "x"  # BYOC is the default
    assert capability_of({}) is None
