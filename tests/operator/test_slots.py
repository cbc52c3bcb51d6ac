"""BYOC capacity: what the routers can place, and why registering it keeps an orchestrator's figure true (pure)."""

from __future__ import annotations

import json

from byoc_operator import api
from byoc_operator.registration import capability_payload, registered_condition
from byoc_operator.render import Worker
from byoc_operator.slots import Slots, combine, parse_router_health, router_addresses
from byoc_testenv.orchestrator.capabilities import CapabilityTable
from hypothesis import given
from hypothesis import strategies as st

URL = "http://w-router.ns.svc:8080"


def worker() -> Worker:
    spec = {"sessionsPerPod": 2, "orchestrators": [{"url": "https://o:8935", "secretRef": {"name": "s"}}]}
    return Worker.from_body({"metadata": {"name": "w", "namespace": "ns"}, "spec": spec}, "img")


def test_router_health_gives_free_slots_and_running_streams() -> None:
    health = {"status": "OK", "active_streams": 3, "capacity": 4, "available": 1, "pods": 2}
    assert parse_router_health(health) == Slots(free=1, active=3)
    assert parse_router_health({"status": "LOADING", "active_streams": 0, "capacity": 0, "available": 0}) == Slots(0, 0)
    for broken in (None, [], {"available": 1}, {"active_streams": 1}, {"available": -1, "active_streams": 0},
                   {"available": True, "active_streams": 0}, {"available": "2", "active_streams": 0}):  # fmt: skip
        assert parse_router_health(broken) is None, broken


def test_two_routers_advertise_what_either_can_place() -> None:
    # One replica has not polled the new pod yet: the orchestrator's call may go to it, so its figure counts.
    assert combine([Slots(3, 1), Slots(1, 1)]) == Slots(1, 1)
    assert combine([Slots(2, 0), Slots(2, 2)]) == Slots(2, 2)
    assert combine([None, Slots(2, 1)]) == Slots(2, 1)  # a router that does not answer is not asked
    assert combine([None, None]) is None and combine([]) is None


def test_only_running_router_pods_of_this_worker_are_asked() -> None:
    def pod(name: str, component: str, ip: str | None, worker_name: str = "w", **extra: object) -> dict:
        labels = {"byoc.livepeer.org/worker": worker_name, "app.kubernetes.io/component": component}
        status = {"phase": extra.pop("phase", "Running"), **({"podIP": ip} if ip else {})}
        return {"metadata": {"name": name, "labels": labels, **extra}, "status": status}

    pods = [
        pod("p0", "worker", "10.0.0.3"),
        pod("r1", "router", "10.0.0.2"),
        pod("r0", "router", "10.0.0.1"),
        pod("r2", "router", None),
        pod("r3", "router", "10.0.0.4", phase="Pending"),
        pod("r4", "router", "10.0.0.5", deletionTimestamp="2026-01-01T00:00:00Z"),
        pod("x0", "router", "10.0.0.6", worker_name="other"),
    ]
    assert router_addresses(worker(), pods) == ["http://10.0.0.1:8080", "http://10.0.0.2:8080"]
    # A status with an IP but no phase is asked: only a phase other than Running rules a pod out.
    no_phase = pod("r5", "router", "10.0.0.7")
    del no_phase["status"]["phase"]
    assert router_addresses(worker(), [*pods, no_phase])[-1] == "http://10.0.0.7:8080"


def test_the_condition_says_what_the_routers_can_place() -> None:
    ok = [api.OrchestratorStatus(url="a", registered=True, capacity=1)]
    assert registered_condition(ok, 4, False, Slots(1, 3), routed=True) == (
        True,
        "AllRegistered",
        "registered with 1 orchestrator(s), capacity 4; routers: 1 free, 3 streams running",
    )
    status, reason, message = registered_condition(ok, 4, False, None, routed=True)
    assert (status, reason) == (False, "RoutersUnreachable") and "no free slot" in message
    status, reason, message = registered_condition(ok, 4, True, Slots(0, 2), routed=True)
    assert (status, reason) == (False, "Unregistering") and "2 stream(s) still running" in message
    assert registered_condition(ok, 4, True, Slots(0, 0), routed=True)[2] == "the worker is being deleted"


# -- the design, checked against the orchestrator's own table semantics ------------------------------------


class Fleet:
    """Slots on the worker pods, and one orchestrator (the test orchestrator's table: upstream's Load rules)
    that every stream goes through."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.running = 0
        self.table = CapabilityTable()
        self.worker = worker()

    def register(self) -> None:
        payload = capability_payload(self.worker, max(0, self.total - self.running), URL)
        self.table.register(json.dumps(payload))

    def start(self) -> None:
        if self.running < self.total:  # a full router answers 503: the orchestrator frees the reservation
            self.table.reserve("live-video-to-video")
            self.running += 1

    def end(self) -> None:
        if self.running:
            self.table.free("live-video-to-video")
            self.running -= 1

    def resize(self, total: int) -> None:
        self.total = total
        self.register()  # a change the orchestrator cannot see: the routers' free count changes, so register

    @property
    def believed(self) -> int:
        return self.table.available("live-video-to-video")


@given(
    st.integers(0, 6),
    st.lists(st.sampled_from(["start", "end", "refresh"]) | st.integers(0, 6), max_size=40),
)
def test_registering_free_slots_keeps_the_orchestrators_figure_true(total: int, steps: list[object]) -> None:
    fleet = Fleet(total)
    fleet.register()
    for step in steps:
        if isinstance(step, int):
            fleet.resize(max(step, fleet.running))  # shrinking below the streams running waits for them (drain)
        elif step == "start":
            fleet.start()
        elif step == "end":
            fleet.end()
        elif step == "refresh":
            fleet.register()
        assert fleet.believed == fleet.total - fleet.running, (step, fleet.total, fleet.running)


def test_registering_the_total_is_what_went_wrong() -> None:
    # The old design, on upstream's table: one stream running, a refresh re-registers the total.
    table = CapabilityTable()
    payload = capability_payload(worker(), 2, URL)
    table.register(json.dumps(payload))
    table.reserve("live-video-to-video")
    table.register(json.dumps(payload))  # refresh: Load back to 0
    assert table.available("live-video-to-video") == 2  # 1 is free
    table.free("live-video-to-video")
    assert table.available("live-video-to-video") == 3  # 2 exist
