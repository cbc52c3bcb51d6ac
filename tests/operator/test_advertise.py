"""Which URL a BYOC worker registers, from what Kubernetes reports for its router Service (pure)."""

from __future__ import annotations

from typing import Any

from byoc_operator import api
from byoc_operator.advertise import Address, advertised_address
from byoc_operator.registration import registered_condition
from byoc_operator.render import Worker
from byoc_operator.render.router import render_router_service


def worker(**registration: Any) -> Worker:
    spec = {"orchestrators": [{"url": "https://o:8935", "secretRef": {"name": "s"}}], "registration": registration}
    return Worker.from_body({"metadata": {"name": "w", "namespace": "ns"}, "spec": spec}, "img")


def test_by_default_the_in_cluster_url_is_registered_and_the_status_says_who_can_reach_it() -> None:
    address = advertised_address(worker(), None)
    assert address == Address(
        "http://w-router.ns.svc:8080",
        False,
        "registered at the in-cluster URL, which orchestrators outside the cluster cannot reach: set "
        "registration.expose (LoadBalancer, NodePort) or advertiseUrl (an Ingress, a fixed address)",
    )
    status, reason, message = registered_condition(
        [api.OrchestratorStatus(url="o", registered=True)], 2, False, address=address
    )
    assert (status, reason) == (True, "AllRegistered")
    assert "outside the cluster cannot reach" in message and "registration.expose" in message
    assert render_router_service(worker())["spec"]["type"] == "ClusterIP"


def test_a_load_balancer_is_registered_once_kubernetes_reports_its_address() -> None:
    w = worker(
        expose={
            "type": "LoadBalancer",
            "annotations": {"lb": "external"},
            "loadBalancerSourceRanges": ["203.0.113.0/24"],
        }
    )
    service = render_router_service(w)
    assert service["spec"]["type"] == "LoadBalancer" and service["metadata"]["annotations"] == {"lb": "external"}
    assert service["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24"]
    pending = advertised_address(w, {**service, "status": {"loadBalancer": {}}})
    assert pending == Address(None, False, "waiting for a load balancer address for Service w-router")
    status, reason, message = registered_condition([], 2, False, address=pending)
    assert (status, reason) == (False, "NoOrchestrators")  # nothing named comes first
    status, reason, message = registered_condition([api.OrchestratorStatus(url="o")], 2, False, address=pending)
    assert (status, reason) == (False, "AddressPending") and "load balancer address" in message
    ready = {**service, "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}}
    assert advertised_address(w, ready) == Address("http://lb.example.com:8080", True)
    v6 = {**service, "status": {"loadBalancer": {"ingress": [{"ip": "2001:db8::7"}]}}}
    assert advertised_address(w, v6).url == "http://[2001:db8::7]:8080"


def test_a_node_port_is_registered_with_the_node_address_given() -> None:
    w = worker(expose={"type": "NodePort", "nodeAddress": "203.0.113.9"})
    service = render_router_service(w)
    pending = Address(None, False, "waiting for a node port on Service w-router")
    assert advertised_address(w, service) == pending  # not allocated yet
    service["spec"]["ports"][0]["nodePort"] = 31234
    address = advertised_address(w, service)
    assert address == Address("http://203.0.113.9:31234", True)


def test_a_fixed_url_wins_and_never_ends_in_a_slash() -> None:
    w = worker(advertiseUrl="https://byoc.example.com/BOX/", expose={"type": "LoadBalancer"})
    assert advertised_address(w, None) == Address("https://byoc.example.com/BOX", True)  # only the slash goes
