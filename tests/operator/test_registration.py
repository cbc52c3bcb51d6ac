"""Pure registration decisions."""

from __future__ import annotations

from byoc_operator import api
from byoc_operator.advertise import advertised_address
from byoc_operator.registration import (
    Memory,
    SentToken,
    capability_payload,
    next_token,
    our_runners,
    plan,
    registered_condition,
    sanitise,
)
from byoc_operator.render import Worker
from byoc_operator.status import entry_json


def test_plan_registers_on_change_or_refresh_and_unregisters_at_zero_capacity() -> None:
    assert plan(True, "d1", None, 100.0, 60) == "register"
    assert plan(True, "d1", Memory("d1", 90.0), 100.0, 60) == "keep"
    assert plan(True, "d2", Memory("d1", 90.0), 100.0, 60) == "register"  # capacity or price changed
    assert plan(True, "d1", Memory("d1", 30.0), 100.0, 60) == "register"  # periodic refresh
    assert plan(False, "d1", Memory("d1", 90.0), 100.0, 60) == "unregister"
    assert plan(False, "d1", Memory(None, 90.0), 100.0, 60) == "keep"
    assert plan(False, "d1", None, 100.0, 60) == "unregister"  # after an operator restart: make sure


def test_plan_retries_a_failed_call_after_a_pause_not_on_every_event() -> None:
    failed = Memory("d1", 100.0, error="HTTP 400: invalid authorization")
    assert plan(True, "d1", failed, 102.0, 60) == "keep"
    assert plan(True, "d1", failed, 106.0, 60) == "register"
    assert plan(False, "d1", failed, 106.0, 60) == "unregister"


def test_memory_is_the_status_entry() -> None:
    assert entry_json(Memory("d", 1.0, 4, "t0").entry("u")) == {
        "url": "u",
        "registered": True,
        "capacity": 4,
        "since": "t0",
    }
    assert entry_json(Memory(None, 1.0, error="boom").entry("u")) == {
        "url": "u",
        "registered": False,
        "capacity": 0,
        "lastError": "boom",
    }


def test_payload_carries_capability_router_url_capacity_and_price() -> None:
    w = Worker.from_body(
        {
            "metadata": {"name": "w", "namespace": "ns"},
            "spec": {
                "capability": {"name": "cartoon", "description": "d"},
                "pricing": {"pricePerUnit": 5, "priceScaling": 10, "currency": "wei"},
                # go-livepeer appends /stream/start: a trailing '/' would give '//stream/start' (a 404)
                "registration": {"advertiseUrl": "https://w.example.com/byoc/"},
            },
        },
        "img",
    )
    url = advertised_address(w, None).url
    assert url is not None
    assert capability_payload(w, 6, url) == {
        "name": "cartoon",
        "description": "d",
        "url": "https://w.example.com/byoc",
        "capacity": 6,
        "price_per_unit": 5,
        "price_scaling": 10,
        "currency": "wei",
        "token": "",
    }


def test_registered_condition_reasons() -> None:
    ok = [api.OrchestratorStatus(url="a", registered=True)]
    assert registered_condition(ok, 2, False)[:2] == (True, "AllRegistered")
    assert registered_condition([], 2, False)[1] == "NoOrchestrators"
    assert (
        registered_condition([api.OrchestratorStatus(url="a", last_error="HTTP 400")], 2, False)[1]
        == "RegistrationFailed"
    )
    assert registered_condition(ok, 0, False)[1] == "NoCapacity"
    assert registered_condition([api.OrchestratorStatus(url="a")], 2, False)[1] == "Registering"


def test_sanitise_masks_secrets_and_bounds_length() -> None:
    assert sanitise("bad secret hunter2 here", "hunter2") == "bad secret *** here"
    assert len(sanitise("x" * 1000)) == 300


def test_our_runners_matches_pod_routes_only() -> None:
    discovery = [
        {
            "address": "o",
            "runners": [
                {"url": "o/apps/w-abc/session", "capacity": 2},
                {"url": "o/apps/other-1/session", "capacity": 1},
            ],
        },
        {"address": "p"},
    ]
    assert our_runners(discovery, ["w-abc", "w-def"]) == [{"url": "o/apps/w-abc/session", "capacity": 2}]
    assert our_runners({"bad": 1}, ["w"]) == []


def test_a_rotated_token_is_registered_only_once_the_pods_can_have_it() -> None:
    first = next_token(None, "one", 0.0, delay=120)
    assert first == SentToken("one")  # the first registration: nothing to wait for
    assert next_token(first, "one", 50.0, delay=120) == first
    seen = next_token(first, "two", 60.0, delay=120)
    assert seen.value == "one" and seen.candidate == "two"  # the kubelet may not have synced the pods yet
    assert next_token(seen, "two", 179.0, delay=120).value == "one"
    assert next_token(seen, "two", 180.0, delay=120) == SentToken("two")
    # Rotated again before the first change went out: the wait starts over for the newest token.
    again = next_token(seen, "three", 100.0, delay=120)
    assert (again.value, again.candidate, again.seen_at) == ("one", "three", 100.0)
    assert next_token(seen, "one", 100.0, delay=120) == SentToken("one")  # rotated back
