"""Which orchestrators a worker may use (registration.py): BYOCOrchestrators offered to its namespace, and its own
ones only where the operator allows them. Pure."""

from __future__ import annotations

from typing import Any

from byoc_operator import registration
from byoc_operator.render.worker import Worker


def worker(spec: dict[str, Any], namespace: str = "team-a") -> Worker:
    return Worker.from_body({"metadata": {"name": "w", "namespace": namespace}, "spec": spec}, "img")


def admin(url: str, namespaces: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> dict:
    spec = {
        "url": url,
        "secretRef": {"name": "s"},
        "tls": {"caBundleSecretRef": {"name": "ca", "key": "ca.crt"}},
        "namespaceSelector": {"matchLabels": namespaces or {}},
    }
    return {"labels": labels or {}, "spec": spec}


def test_a_named_orchestrator_offered_to_the_namespace_carries_its_own_secret_and_ca() -> None:
    w = worker({"orchestratorRefs": [{"name": "o"}]})
    targets, refused = registration.cluster_targets(
        w, {"o": admin("https://o:8935/", {"team": "a"})}, {"team": "a"}, "byoc-system"
    )
    assert refused == []
    (t,) = targets
    assert (t.url, t.secret_name, t.secret_namespace, t.ca_secret_name) == ("https://o:8935", "s", "byoc-system", "ca")


def test_missing_and_not_offered_read_the_same() -> None:
    w = worker({"orchestratorRefs": [{"name": "o"}, {"name": "gone"}]})
    targets, refused = registration.cluster_targets(w, {"o": admin("https://o", {"team": "b"})}, {"team": "a"}, "ns")
    assert targets == []
    assert [e.last_error for e in refused] == [
        "no BYOCOrchestrator 'o' is offered to namespace team-a",
        "no BYOCOrchestrator 'gone' is offered to namespace team-a",
    ]


def test_a_selector_takes_every_offered_match_and_skips_the_rest_silently() -> None:
    w = worker({"orchestratorRefs": [{"selector": {"matchLabels": {"fleet": "eu"}}}]})
    orchestrators = {
        "eu-1": admin("https://eu-1", labels={"fleet": "eu"}),
        "eu-2": admin("https://eu-2", {"team": "b"}, {"fleet": "eu"}),
        "us-1": admin("https://us-1", labels={"fleet": "us"}),
    }
    targets, refused = registration.cluster_targets(w, orchestrators, {"team": "a"}, "ns")
    assert [t.url for t in targets] == ["https://eu-1"] and refused == []


def test_no_operator_namespace_no_orchestrator() -> None:
    w = worker({"orchestratorRefs": [{"name": "o"}]})
    targets, refused = registration.cluster_targets(w, {"o": admin("https://o")}, {}, None)
    assert targets == [] and len(refused) == 1


def test_own_orchestrators_are_refused_and_dropped_where_not_allowed() -> None:
    spec = {
        "orchestrators": [{"url": "https://mine:8935", "secretRef": {"name": "db", "key": "password"}}],
        "registration": {"orchestratorSelector": {"matchLabels": {"fleet": "x"}}},
        "orchestratorRefs": [{"name": "o"}],
    }
    w = worker(spec)
    refused = [e.url for e in registration.own_refusals(w)]
    assert refused == ["https://mine:8935", "registration.orchestratorSelector"]
    stripped = registration.without_own(w)
    assert stripped.spec.orchestrators is None and stripped.spec.registration.orchestrator_selector is None
    assert stripped.spec.orchestrator_refs == w.spec.orchestrator_refs and stripped.registers
    assert registration.targets(stripped, [{"name": "f", "labels": {"fleet": "x"}, "url": "https://f"}]) == []
