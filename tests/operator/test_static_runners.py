"""Live Runner static mode and the worker token: rendering and upsert decisions (pure)."""

from __future__ import annotations

import json
from typing import Any

from byoc_operator import api
from byoc_operator.orchestrator import upsert_timeout
from byoc_operator.registration import Target, explicit_targets
from byoc_operator.render import Worker
from byoc_operator.render.deployment import render_deployment
from byoc_operator.render.router import render_router_deployment
from byoc_operator.render.runners import (
    RETIRED_STATUS_CODE,
    configmap_entries,
    pod_address,
    price_info,
    render_runners_configmap,
    runner_entries,
    runners_json,
)
from byoc_operator.static_runners import (
    Upserted,
    document_digest,
    due,
    known_entries,
    our_runners,
    static_note,
    status_entry,
    upsert_document,
)
from byoc_operator.status import entry_json
from byoc_testenv.orchestrator.live_runners import LiveRunnerRegistry, RunnerError


def worker(**spec: Any) -> Worker:
    base = {
        "capability": {"name": "live-video-to-video"},
        "sessionsPerPod": 2,
        "registration": {"protocol": "live-runner", "liveRunnerMode": "static"},
        "orchestrators": [{"url": "http://orch:8935/", "cliUrl": "http://orch:7935/"}],
    }
    return Worker.from_body(
        {"metadata": {"name": "w", "namespace": "ns", "uid": "u1"}, "spec": {**base, **spec}}, "img"
    )


def pod(name: str, ip: str | None, ready: bool = True, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict[str, Any] = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status["podIP"] = ip
    return {"metadata": meta, "status": status}


def test_one_runner_per_ready_pod_in_the_upstream_format() -> None:
    w = worker()
    pods = [pod("w-b", "10.0.0.2"), pod("w-a", "10.0.0.1"), pod("w-c", "10.0.0.3", ready=False),
            pod("w-d", None), pod("w-e", "10.0.0.5", deleting=True)]  # fmt: skip
    entries = runner_entries(w, pods, [])
    # Slot labels, taken in pod-name order; a terminating pod without a slot gets none.
    assert [(e["label"], e["runner_url"]) for e in entries] == [
        ("w-0.ns", "http://10.0.0.1:8000"), ("w-1.ns", "http://10.0.0.2:8000"),
    ]  # fmt: skip
    assert entries[0] == {
        "label": "w-0.ns",
        "routing": "label",
        "runner_url": "http://10.0.0.1:8000",
        "health_url": "http://10.0.0.1:8000/ready",  # 503 while loading or broken, unlike /health
        "healthy_status_code": 200,
        "app": "live-video-to-video",
        "mode": "persistent",
        "capacity": 2,
    }
    cm = render_runners_configmap(w, entries)
    assert cm["metadata"]["name"] == "w-runners" and cm["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert json.loads(cm["data"]["runners.json"]) == {"runners": entries}
    assert configmap_entries(cm) == entries
    assert configmap_entries({"data": {"runners.json": "not json"}}) == []
    # The test orchestrator (go-livepeer's validation rules, on-chain prices included) takes the document as it is.
    registry = LiveRunnerRegistry("s", 5, 20)
    entries_in = registry.normalize_static(json.loads(cm["data"]["runners.json"]))
    labels: set[str] = set()
    assert [registry.build_static(i, e, labels)["label"] for i, e in enumerate(entries_in)] == ["w-0.ns", "w-1.ns"]


def test_slots_are_stable_labels_pods_take_in_turn() -> None:
    w = worker()
    first = runner_entries(w, [pod("w-a", "10.0.0.1"), pod("w-b", "10.0.0.2")], [])
    # A rollout: w-a is replaced by w-c. w-b keeps its slot, w-c takes the one w-a left: no new label upstream.
    after = runner_entries(w, [pod("w-b", "10.0.0.2"), pod("w-c", "10.0.0.3")], first)
    assert [(e["label"], e["runner_url"]) for e in after] == [
        ("w-0.ns", "http://10.0.0.3:8000"), ("w-1.ns", "http://10.0.0.2:8000"),
    ]  # fmt: skip
    # A pod draining (terminating, still running) keeps its entry healthy: retiring it would cut its streams.
    draining = runner_entries(w, [pod("w-b", "10.0.0.2", ready=False, deleting=True), pod("w-c", "10.0.0.3")], after)
    assert [(e["label"], e["healthy_status_code"]) for e in draining] == [("w-0.ns", 200), ("w-1.ns", 200)]
    # Once it is gone, its slot is no longer published (the upsert retires it) and a new pod may take it.
    assert [e["label"] for e in runner_entries(w, [pod("w-c", "10.0.0.3")], draining)] == ["w-0.ns"]
    grown = runner_entries(w, [pod("w-c", "10.0.0.3"), pod("w-d", "10.0.0.4")], [draining[0]])
    assert [(e["label"], e["runner_url"]) for e in grown] == [
        ("w-0.ns", "http://10.0.0.3:8000"), ("w-1.ns", "http://10.0.0.4:8000"),
    ]  # fmt: skip


def test_pods_without_an_address_do_not_hide_the_pods_after_them() -> None:
    w = worker()
    pods = [pod("a-gone", None), pod("b-starting", "10.0.0.9", ready=False), pod("w-a", "10.0.0.1")]
    assert [(e["label"], e["runner_url"]) for e in runner_entries(w, pods, [])] == [("w-0.ns", "http://10.0.0.1:8000")]
    # Slots held by running pods are skipped over: a new pod takes the next free one.
    held = runner_entries(w, [pod("w-a", "10.0.0.1"), pod("w-b", "10.0.0.2")], [])
    grown = runner_entries(w, [pod("w-a", "10.0.0.1"), pod("w-b", "10.0.0.2"), pod("w-c", "10.0.0.3")], held)
    assert [(e["label"], e["runner_url"]) for e in grown][2] == ("w-2.ns", "http://10.0.0.3:8000")


def test_which_pods_may_hold_a_runner_entry() -> None:
    def terminating(phase: str | None) -> dict[str, Any]:
        p = pod("p", "10.0.0.1", ready=False, deleting=True)
        if phase:
            p["status"]["phase"] = phase
        return p

    assert pod_address(pod("p", "10.0.0.1"), serving=False) == "10.0.0.1"
    # Not ready and not terminating: no entry, whether or not it served before.
    assert pod_address(pod("p", "10.0.0.1", ready=False), serving=True) is None
    # Terminating while still running (draining): it keeps serving its sessions, but takes no new slot.
    for phase in ("Running", None):
        assert pod_address(terminating(phase), serving=True) == "10.0.0.1", phase
        assert pod_address(terminating(phase), serving=False) is None, phase
    assert pod_address(terminating("Failed"), serving=True) is None
    assert pod_address(pod("p", "10.0.0.1", deleting=True), serving=False) is None


def test_the_runners_document_is_stable_text_and_the_configmap_in_full() -> None:
    entries = [{"label": "w-0.ns", "capacity": 2}]
    text = '{\n  "runners": [\n    {\n      "capacity": 2,\n      "label": "w-0.ns"\n    }\n  ]\n}\n'
    assert runners_json(entries) == text
    w = worker()
    assert render_runners_configmap(w, entries) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": w.metadata("w-runners"),
        "data": {"runners.json": text},
    }


def test_only_labelled_runners_are_read_back_from_the_configmap() -> None:
    listed = {"runners": [{"label": "w-0.ns"}, {"label": 5}, {"runner_url": "http://10.0.0.1:8000"}, "w-1.ns"]}
    assert configmap_entries({"data": {"runners.json": json.dumps(listed)}}) == [{"label": "w-0.ns"}]
    for unreadable in (None, {}, {"data": None}, {"data": {"runners.json": "[1]"}}, {"data": {"runners.json": ""}}):
        assert configmap_entries(unreadable) == [], unreadable


def test_a_user_image_is_health_checked_through_its_sidecar() -> None:
    w = worker(container={"image": "ghcr.io/acme/w:1", "port": 9000})
    (entry,) = runner_entries(w, [pod("w-a", "10.0.0.1")], [])
    assert (entry["runner_url"], entry["health_url"]) == ("http://10.0.0.1:9000", "http://10.0.0.1:8090/ready")


def test_price_info_is_the_live_runner_price_as_given() -> None:
    assert price_info(worker().spec.pricing) is None
    assert "price_info" not in runner_entries(worker(), [pod("p", "10.0.0.1")], [])[0]
    priced = worker(pricing={"pricePerUnit": 3, "liveRunner": {"price": "0.0125", "unit": "720p"}})
    assert price_info(priced.spec.pricing) == {"price": "0.0125", "currency": "usd", "unit": "720p"}
    assert runner_entries(priced, [pod("p", "10.0.0.1")], [])[0]["price_info"]["price"] == "0.0125"
    hourly = worker(pricing={"liveRunner": {"price": "2"}})
    assert price_info(hourly.spec.pricing) == {"price": "2", "currency": "usd", "unit": "hour"}
    # An on-chain orchestrator (the test orchestrator's on-chain mode, upstream's normalizeHeartbeat) takes the
    # priced entry and refuses the unpriced one.
    onchain = LiveRunnerRegistry("s", 5, 20, onchain=True)
    for w, ok in ((priced, True), (worker(), False)):
        doc = onchain.normalize_static({"runners": runner_entries(w, [pod("p", "10.0.0.1")], [])})
        try:
            onchain.build_static(0, doc[0], set())
        except RunnerError as exc:
            assert not ok and "price_info.price is required" in str(exc)
        else:
            assert ok


def test_gone_pods_are_retired_not_left_routable() -> None:
    w = worker()
    a, b = runner_entries(w, [pod("a", "10.0.0.1"), pod("b", "10.0.0.2")], [])
    memory = Upserted("d", 0.0, {"w-0.ns": a, "w-1.ns": b})
    doc = upsert_document([a], known_entries(memory, []))
    assert doc["runners"][0] == a
    assert doc["runners"][1] == {**b, "healthy_status_code": RETIRED_STATUS_CODE}
    # after an operator restart (no memory) what the ConfigMap published is what may be at the orchestrator
    assert known_entries(None, [a, b]) == {"w-0.ns": a, "w-1.ns": b}
    assert upsert_document([], {}) == {"runners": []}


def test_upsert_only_on_change_refresh_or_retry() -> None:
    assert due("d1", None, 100.0, 60)
    assert not due("d1", Upserted("d1", 90.0), 100.0, 60)
    assert due("d2", Upserted("d1", 90.0), 100.0, 60)
    assert due("d1", Upserted("d1", 30.0), 100.0, 60)  # a restarted orchestrator holds only its runners.json
    failed = Upserted("d1", 100.0, error="HTTP 400")
    assert not due("d2", failed, 102.0, 60) and due("d2", failed, 106.0, 60)
    # The pauses are "at least": due the moment they are over.
    assert due("d1", Upserted("d1", 40.0), 100.0, 60) and due("d1", failed, 105.0, 60)


def test_status_prefers_discovery_then_the_upsert_reply() -> None:
    labels = {"a.ns", "b.ns"}
    memory = Upserted("d", 0.0, healthy=frozenset({"a.ns", "gone.ns"}))
    listed = [
        {"url": "http://o/apps/a.ns/session", "capacity": 2},
        {"url": "http://o/apps/b.ns/session", "capacity": 2},
    ]
    assert entry_json(status_entry("u", labels, memory, listed, 2, None, "t1")) == {
        "url": "u", "registered": True, "capacity": 4, "runners": 2, "since": "t1",
    }  # fmt: skip
    was = api.OrchestratorStatus(url="u", registered=True, since="t0")
    assert status_entry("u", labels, memory, None, 2, was, "t1").since == "t0"
    assert status_entry("u", labels, memory, None, 2, None, "t1").capacity == 2
    failed = Upserted(None, 0.0, error="ClientConnectorError: refused")
    assert entry_json(status_entry("u", labels, failed, None, 2, None, "t1")) == {
        "url": "u", "registered": False, "capacity": 0, "runners": 0, "lastError": "ClientConnectorError: refused",
    }  # fmt: skip


def test_one_runner_listed_is_registered_and_a_runner_without_capacity_counts_none() -> None:
    listed = [{"url": "http://o/apps/a.ns/session"}]
    assert entry_json(status_entry("u", {"a.ns"}, None, listed, 2, None, "t1")) == {
        "url": "u", "registered": True, "capacity": 0, "runners": 1, "since": "t1",
    }  # fmt: skip


def test_without_discovery_only_an_accepted_upsert_tells_the_health() -> None:
    labels = {"a.ns"}
    nothing = {"url": "u", "registered": False, "capacity": 0, "runners": 0}
    assert entry_json(status_entry("u", labels, None, None, 2, None, "t1")) == nothing
    # Never accepted (the first call failed): what it once said of health is not the orchestrator's.
    never = Upserted(None, 0.0, healthy=frozenset(labels), error="HTTP 500")
    assert entry_json(status_entry("u", labels, never, None, 2, None, "t1")) == {**nothing, "lastError": "HTTP 500"}
    accepted = Upserted("d", 0.0, healthy=frozenset(labels))
    assert entry_json(status_entry("u", labels, accepted, None, 3, None, "t1")) == {
        "url": "u", "registered": True, "capacity": 3, "runners": 1, "since": "t1",
    }  # fmt: skip


def test_the_runners_of_these_labels_are_found_by_their_route_in_a_discovery_answer() -> None:
    a = {"url": "http://o/apps/w-0.ns/session", "capacity": 2}
    other = {"url": "http://o/apps/w-0.other/session"}
    discovery = [{"runners": [a, other, {"capacity": 1}]}, None, {"runners": None}, {"runners": [dict(a)]}]
    assert our_runners(discovery, {"w-0.ns", "w-1.ns"}) == [a, a]
    assert our_runners(discovery, set()) == []
    assert our_runners({"runners": [a]}, {"w-0.ns"}) == []  # not a list of orchestrators


def test_the_note_names_the_configmap_while_an_orchestrator_has_no_cli_url() -> None:
    with_cli = Target("http://orch:8935", None, "", cli_url="http://orch:7935")
    without = Target("http://other:8935", None, "")
    assert static_note(worker(), [with_cli]) is None and static_note(worker(), []) is None
    assert static_note(worker(), [with_cli, without]) == (
        "orchestrators without cliUrl read ConfigMap w-runners (runners.json) at start only: mount it as "
        "-liveRunnerConfig and restart them, or set cliUrl"
    )


def test_the_document_digest_follows_the_content_not_the_key_order() -> None:
    one = {"runners": [{"label": "w-0.ns", "capacity": 2}]}
    assert document_digest(one) == document_digest({"runners": [{"capacity": 2, "label": "w-0.ns"}]})
    assert document_digest(one) != document_digest({"runners": [{"label": "w-0.ns", "capacity": 3}]})


def test_static_targets_need_no_secret_and_carry_the_cli_url() -> None:
    (target,) = explicit_targets(worker())
    assert (target.url, target.cli_url, target.secret_name) == ("http://orch:8935", "http://orch:7935", None)


def test_token_secret_is_mounted_as_a_file_in_router_and_pods() -> None:
    w = Worker.from_body(
        {
            "metadata": {"name": "w", "namespace": "ns"},
            "spec": {
                "orchestrators": [{"url": "http://orch:8935", "secretRef": {"name": "orch"}}],
                "registration": {"tokenSecretRef": {"name": "tok", "key": "token"}},
            },
        },
        "img",
    )
    volume = {"name": "byoc-token", "secret": {"secretName": "tok", "items": [{"key": "token", "path": "token"}]}}
    pod_spec = render_deployment(w)["spec"]["template"]["spec"]
    router_spec = render_router_deployment(w)["spec"]["template"]["spec"]
    for spec, var in ((pod_spec, "BYOC_TOKEN_FILE"), (router_spec, "BYOC_ROUTER_TOKEN_FILE")):
        assert volume in spec["volumes"]
        c = spec["containers"][0]
        assert {"name": var, "value": "/var/run/byoc/token/token"} in c["env"]
        assert {"name": "byoc-token", "mountPath": "/var/run/byoc/token", "readOnly": True} in c["volumeMounts"]
    without = render_deployment(worker())["spec"]["template"]["spec"]
    assert "byoc-token" not in json.dumps(without)


def test_an_upsert_may_take_as_long_as_upstream_checks_its_entries_one_by_one() -> None:
    # go-livepeer health-checks each entry in turn (3 s timeout each) before it answers the upsert.
    assert upsert_timeout(0).total == 10
    assert upsert_timeout(40).total == 10 + 3 * 40
