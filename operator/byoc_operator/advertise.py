"""Which URL is registered with orchestrators for a BYOC worker: the address Kubernetes reports for the router's
Service, as ``registration.expose`` exposes it, or a fixed ``advertiseUrl``. Pure.

Orchestrators usually run outside the cluster: an in-cluster name (``<worker>-router.<ns>.svc``) is registered
only when nothing else is asked for, and the status says who can reach it. go-livepeer appends the route to the
URL (``CapabilityUrl + "/stream/start"``, ``byoc/stream_orchestrator.go``), so it never ends in '/'.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from byoc_operator.render.worker import ROUTER_PORT, Worker


@dataclass(frozen=True)
class Address:
    """The URL to register (None: Kubernetes has not assigned one yet), and what the status should say."""

    url: str | None
    outside: bool  # reachable from outside the cluster, as far as the operator can tell
    note: str | None = None


def _host(text: str) -> str:
    try:
        return f"[{text}]" if isinstance(ipaddress.ip_address(text), ipaddress.IPv6Address) else text
    except ValueError:
        return text


def in_cluster_url(worker: Worker) -> str:
    return f"http://{worker.router_name}.{worker.namespace}.svc:{ROUTER_PORT}"


def advertised_address(worker: Worker, router_service: dict[str, Any] | None) -> Address:
    reg = worker.spec.registration
    if reg.advertise_url:
        return Address(reg.advertise_url.rstrip("/"), True)
    expose = reg.expose
    service = router_service or {}
    if expose.type == "LoadBalancer":
        ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        host = next((i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")), None)
        if host:
            return Address(f"http://{_host(str(host))}:{ROUTER_PORT}", True)
        return Address(None, False, f"waiting for a load balancer address for Service {worker.router_name}")
    if expose.type == "NodePort":
        ports = (service.get("spec") or {}).get("ports") or []
        node_port = next((p.get("nodePort") for p in ports if p.get("nodePort")), None)
        if node_port and expose.node_address:
            return Address(f"http://{_host(expose.node_address)}:{node_port}", True)
        return Address(None, False, f"waiting for a node port on Service {worker.router_name}")
    return Address(
        in_cluster_url(worker),
        False,
        "registered at the in-cluster URL, which orchestrators outside the cluster cannot reach: set "
        "registration.expose (LoadBalancer, NodePort) or advertiseUrl (an Ingress, a fixed address)",
    )
