"""registration.py, pinned down: the Registered condition's whole triple on every branch, targets from the spec,
from labelled Secrets and from the administrator (explicit first, each URL once), the payload digest, origins,
retry/refresh boundaries, token rotation, discovery matching and sanitising."""

from __future__ import annotations

from typing import Any

import pytest
from byoc_operator import api
from byoc_operator.advertise import Address
from byoc_operator.registration import (
    FINALIZER,
    ORCHESTRATOR_LABEL,
    RETRY_SECONDS,
    Memory,
    SentToken,
    Target,
    allowed_origins,
    cluster_targets,
    explicit_targets,
    next_token,
    orchestrator_target,
    our_runners,
    own_refusals,
    payload_digest,
    plan,
    registered_condition,
    sanitise,
    selected_targets,
    targets,
    unavailable,
    without_own,
)
from byoc_operator.render.worker import Worker
from byoc_operator.slots import Slots
from byoc_operator.status import entry_json


def worker(spec: dict[str, Any]) -> Worker:
    return Worker.from_body({"metadata": {"name": "w", "namespace": "ns"}, "spec": spec}, "img")


def ok(url: str) -> api.OrchestratorStatus:
    return api.OrchestratorStatus(url=url, registered=True)


def entry(fields: dict[str, Any]) -> api.OrchestratorStatus:
    """An entry given as the status subresource holds it (camelCase)."""
    return api.OrchestratorStatus.model_validate(fields)


def test_names_the_cluster_sees() -> None:
    assert (FINALIZER, ORCHESTRATOR_LABEL) == ("byoc.livepeer.org/registration", "byoc.livepeer.org/orchestrator")


# -- registered_condition ----------------------------------------------------------------------------------------


def test_deleting() -> None:
    assert registered_condition([ok("a")], 4, True) == (False, "Unregistering", "the worker is being deleted")
    assert registered_condition([ok("a")], 4, True, Slots(0, 0)) == (
        False,
        "Unregistering",
        "the worker is being deleted",
    )
    assert registered_condition([ok("a")], 4, True, Slots(1, 2)) == (
        False,
        "Unregistering",
        "the worker is being deleted: 2 stream(s) still running; registered with no free slot until they end or the "
        "drain grace is over",
    )


def test_no_orchestrators() -> None:
    assert registered_condition([], 4, False) == (False, "NoOrchestrators", "no orchestrator named or selected")


def test_address_pending() -> None:
    assert registered_condition([ok("a")], 4, False, address=Address(None, False, "no LoadBalancer IP yet")) == (
        False,
        "AddressPending",
        "not registered yet: no LoadBalancer IP yet",
    )


def test_capability_conflict_names_the_first_holder() -> None:
    entries = [ok("a"), entry({"url": "b", "heldBy": "ns/x"}), entry({"url": "c", "heldBy": "ns/y", "lastError": "e"})]
    assert registered_condition(entries, 4, False) == (
        False,
        "CapabilityConflict",
        "2/3 orchestrator(s) have this capability name registered for another worker; b: held by BYOCWorker ns/x "
        "(created first), not registered there",
    )


def test_registration_failed_names_the_first_failure() -> None:
    entries = [ok("a"), entry({"url": "b", "lastError": "HTTP 401"}), entry({"url": "c", "lastError": "timeout"})]
    assert registered_condition(entries, 4, False) == (False, "RegistrationFailed", "2/3 failed; b: HTTP 401")


def test_no_capacity() -> None:
    assert registered_condition([ok("a")], 0, False) == (
        False,
        "NoCapacity",
        "no ready pod: advertised with no free slot",
    )


def test_routers_unreachable() -> None:
    assert registered_condition([ok("a")], 4, False, None, True) == (
        False,
        "RoutersUnreachable",
        "no router of this worker answers yet: advertised with no free slot",
    )


def test_registering_names_the_first_waiting() -> None:
    entries = [ok("a"), entry({"url": "b", "registered": False}), entry({"url": "c"})]
    assert registered_condition(entries, 4, False) == (
        False,
        "Registering",
        "2/3 orchestrator(s) do not list it yet: b",
    )


def test_all_registered() -> None:
    assert registered_condition([ok("a"), ok("b")], 4, False) == (
        True,
        "AllRegistered",
        "registered with 2 orchestrator(s), capacity 4",
    )
    assert registered_condition([ok("a")], 4, False, Slots(3, 1), True, Address("https://w", True)) == (
        True,
        "AllRegistered",
        "registered with 1 orchestrator(s), capacity 4; routers: 3 free, 1 streams running",
    )
    assert registered_condition([ok("a")], 4, False, address=Address("http://10.0.0.1:80", False, "in-cluster")) == (
        True,
        "AllRegistered",
        "registered with 1 orchestrator(s), capacity 4; in-cluster",
    )


# -- targets -----------------------------------------------------------------------------------------------------


def test_explicit_targets_carry_every_field() -> None:
    w = worker(
        {
            "orchestrators": [
                {
                    "url": "https://o1:8935/pathX/",
                    "secretRef": {"name": "s1", "key": "k1"},
                    "cliUrl": "http://o1:7935/cliX/",
                    "tls": {"caBundleSecretRef": {"name": "ca1", "key": "ca.pem"}},
                    "channelOrigins": ["https://cdn.example"],
                },
                {"url": "https://o2:8935", "secretRef": {"name": "s2"}, "tls": {"insecureSkipVerify": True}},
                {"url": "http://o3:8935"},
            ]
        }
    )
    assert explicit_targets(w) == [
        Target(
            "https://o1:8935/pathX",
            "s1",
            "k1",
            "ca1",
            "ca.pem",
            False,
            "http://o1:7935/cliX",
            None,
            ("https://cdn.example",),
        ),
        Target("https://o2:8935", "s2", "secret", None, None, True),
        Target("http://o3:8935", None, "secret"),
    ]
    assert explicit_targets(worker({})) == []


def selector_worker() -> Worker:
    return worker({"registration": {"orchestratorSelector": {"matchLabels": {"fleet": "eu", "tier": "a"}}}})


def test_selected_targets_from_labelled_secrets() -> None:
    secrets = [
        {"name": "s0", "labels": {"fleet": "us", "tier": "a"}, "url": "https://o0"},
        {"name": "s1", "labels": {"fleet": "eu", "tier": "a", "x": "y"}, "url": "https://o1/X/", "has_ca": True},
        {"name": "s2", "labels": {"fleet": "eu", "tier": "a"}, "url": "https://o2", "insecure": True},
        {"name": "s3", "labels": {"fleet": "eu"}, "url": "https://o3"},
        {"name": "s4", "labels": {"fleet": "eu", "tier": "a"}},
        {"name": "s5", "url": "https://o5"},
    ]
    assert selected_targets(selector_worker(), secrets) == [
        Target("https://o1/X", "s1", "secret", "s1", "ca.crt", False),
        Target("https://o2", "s2", "secret", None, None, True),
    ]
    assert selected_targets(worker({}), secrets) == []


def test_targets_put_explicit_first_and_each_url_once() -> None:
    w = worker(
        {
            "orchestrators": [{"url": "https://o1", "secretRef": {"name": "mine"}}],
            "registration": {"orchestratorSelector": {"matchLabels": {"fleet": "eu"}}},
        }
    )
    secrets = [
        {"name": "dup", "labels": {"fleet": "eu"}, "url": "https://o1"},
        {"name": "s2", "labels": {"fleet": "eu"}, "url": "https://o2"},
    ]
    admin = [Target("https://o2", "adm", "secret", secret_namespace="sys"), Target("https://o3", "adm", "secret")]
    assert [(t.url, t.secret_name) for t in targets(w, secrets, admin)] == [
        ("https://o1", "mine"),
        ("https://o2", "s2"),
        ("https://o3", "adm"),
    ]
    assert [t.url for t in targets(w, secrets)] == ["https://o1", "https://o2"]


def test_payload_digest_is_short_stable_and_order_free() -> None:
    a = payload_digest({"name": "c", "capacity": 2})
    assert a == payload_digest({"capacity": 2, "name": "c"}) and len(a) == 16 and int(a, 16) >= 0
    assert a != payload_digest({"name": "c", "capacity": 3})


def test_allowed_origins_are_lowercase_sorted_and_once() -> None:
    ts = [
        Target("https://O1:8935/path", "s", "secret", channel_origins=("https://CDN.example", "https://o1:8935")),
        Target("http://o2", "s", "secret"),
    ]
    assert allowed_origins(ts) == ["http://o2", "https://cdn.example", "https://o1:8935"]
    assert allowed_origins([]) == []


def test_own_orchestrators_refused_and_removed() -> None:
    w = worker(
        {
            "orchestrators": [{"url": "https://o1", "secretRef": {"name": "s"}}],
            "registration": {"orchestratorSelector": {"matchLabels": {"fleet": "eu"}}},
        }
    )
    reason = (
        "orchestrators named in a BYOCWorker are not allowed by this operator (nothing was sent): use "
        "spec.orchestratorRefs, the BYOCOrchestrators your cluster administrator offers"
    )
    assert [entry_json(e) for e in own_refusals(w)] == [
        {"url": "https://o1", "registered": False, "capacity": 0, "lastError": reason},
        {"url": "registration.orchestratorSelector", "registered": False, "capacity": 0, "lastError": reason},
    ]
    bare = without_own(w)
    assert bare.spec.orchestrators is None and bare.spec.registration.orchestrator_selector is None
    assert w.spec.orchestrators is not None  # the original is left alone
    plain = worker({})
    assert without_own(plain) is plain and own_refusals(plain) == []


def test_unavailable_does_not_say_why() -> None:
    assert entry_json(unavailable("o", "team-a")) == {
        "url": "byocorchestrator/o",
        "registered": False,
        "capacity": 0,
        "lastError": "no BYOCOrchestrator 'o' is offered to namespace team-a",
    }


# -- memory, plan, tokens ----------------------------------------------------------------------------------------


def test_memory_entry_shows_since_only_while_registered() -> None:
    assert entry_json(Memory(None, 1.0, 0, "t0").entry("u")) == {"url": "u", "registered": False, "capacity": 0}
    assert entry_json(Memory("d", 1.0).entry("u")) == {"url": "u", "registered": True, "capacity": 0}


def test_plan_boundaries() -> None:
    failed = Memory("d", 100.0, error="e")
    assert RETRY_SECONDS == 5.0
    assert plan(True, "d", failed, 100.0 + RETRY_SECONDS - 0.01, 60) == "keep"
    assert plan(True, "d", failed, 100.0 + RETRY_SECONDS, 60) == "register"
    assert plan(True, "d", Memory("d", 100.0), 159.99, 60) == "keep"
    assert plan(True, "d", Memory("d", 100.0), 160.0, 60) == "register"
    assert plan(True, "d", Memory(None, 100.0), 101.0, 60) == "register"


def test_a_new_token_is_registered_only_after_it_had_time_to_reach_the_pods() -> None:
    first = next_token(None, "t1", 0.0)
    assert first == SentToken("t1")
    assert next_token(first, "t1", 50.0) == SentToken("t1")
    seen = next_token(first, "t2", 100.0)
    assert seen == SentToken("t1", "t2", 100.0)
    assert next_token(seen, "t2", 219.9) is seen
    assert next_token(seen, "t2", 220.0) == SentToken("t2")
    assert next_token(seen, "t3", 221.0) == SentToken("t1", "t3", 221.0)
    assert next_token(seen, "t2", 110.0, delay=10.0) == SentToken("t2")


# -- discovery, sanitise -----------------------------------------------------------------------------------------


def test_our_runners_are_found_by_their_pod_route() -> None:
    mine, other = {"url": "https://o/apps/w-1/"}, {"url": "https://o/apps/w-10x"}
    discovery = [
        {"runners": [mine, other, {}]},
        None,
        {"runners": None},
        {"runners": [{"url": "https://p/apps/w-2/x"}]},
    ]
    assert our_runners(discovery, ["w-1", "w-2"]) == [mine, {"url": "https://p/apps/w-2/x"}]
    assert our_runners({"runners": [mine]}, ["w-1"]) == [] and our_runners(discovery, []) == []


def test_sanitise_masks_secrets_and_bounds_the_text() -> None:
    assert sanitise("bad key s3cr3t for s3cr3t", "s3cr3t", "") == "bad key *** for ***"
    assert sanitise("line1\nline2\t\x00end  x") == "line1 line2 end x"
    assert len(sanitise("x" * 2000)) == 300
    assert sanitise("a" * 999 + " s3cr3t", "s3cr3t") == "a" * 300


@pytest.mark.parametrize("text", ["", "   "])
def test_sanitise_empty(text: str) -> None:
    assert sanitise(text) == ""


# -- BYOCOrchestrators -------------------------------------------------------------------------------------------


def test_orchestrator_target_carries_every_field() -> None:
    full = {
        "url": "https://o:8935/pX/",
        "cliUrl": "http://o:7935/cX/",
        "secretRef": {"name": "s", "key": "k"},
        "tls": {"caBundleSecretRef": {"name": "ca", "key": "ca.pem"}},
        "channelOrigins": ["https://cdn.example"],
        "namespaceSelector": {},
    }
    assert orchestrator_target({"spec": full}, "sys") == Target(
        "https://o:8935/pX", "s", "k", "ca", "ca.pem", False, "http://o:7935/cX", "sys", ("https://cdn.example",)
    )
    assert orchestrator_target({"spec": {"url": "https://o2", "namespaceSelector": {}}}, "sys") == Target(
        "https://o2", None, "secret", secret_namespace="sys"
    )
    insecure = {
        "url": "https://o3",
        "secretRef": {"name": "s"},
        "tls": {"insecureSkipVerify": True},
        "namespaceSelector": {},
    }
    assert orchestrator_target({"spec": insecure}, "sys") == Target(
        "https://o3", "s", "secret", None, None, True, secret_namespace="sys"
    )


def test_cluster_targets_take_every_match_and_refuse_an_invalid_one() -> None:
    offered = {"namespaceSelector": {"matchLabels": {}}}
    orchestrators = {
        "a": {"labels": {"fleet": "eu"}, "spec": {"url": "https://a", **offered}},
        "b": {"labels": {"fleet": "eu"}, "spec": {"url": "https://b", **offered}},
        "bad": {"labels": {}, "spec": {"url": 7, **offered}},
    }
    w = worker({"orchestratorRefs": [{"selector": {"matchLabels": {"fleet": "eu"}}}, {"name": "bad"}]})
    found, refused = cluster_targets(w, orchestrators, {}, "sys")
    assert [t.url for t in found] == ["https://a", "https://b"]
    assert refused == [unavailable("bad", "ns")]


def test_without_own_drops_named_orchestrators_alone() -> None:
    w = worker({"orchestrators": [{"url": "https://o1", "secretRef": {"name": "s"}}]})
    assert without_own(w).spec.orchestrators is None


def test_sanitise_cuts_before_folding_spaces() -> None:
    assert sanitise(" " * 999 + "ab") == "a"
