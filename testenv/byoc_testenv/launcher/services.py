"""Service endpoints, computed from Pods the way the EndpointSlice controller does.

The cluster's own EndpointSlices stay empty here: the API server refuses loopback addresses in them
("may not be in the loopback range"), and kwok's pod IPs are loopback so that nothing leaves this machine.
So the launcher matches Services' selectors against Pods itself: a pod is an endpoint when it has an IP, is
not being deleted and is Ready (or the Service publishes not-ready addresses).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class PortView:
    name: str
    port: int
    protocol: str
    endpoints: tuple[tuple[str, int], ...]  # (pod IP, target port) of every ready endpoint


@dataclass(frozen=True)
class ServiceView:
    name: str
    namespace: str
    cluster_ip: str | None  # None: headless (or no ClusterIP at all)
    ports: tuple[PortView, ...]
    ready_ips: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str]:
        return self.name, self.namespace

    def to_json(self) -> Obj:
        return {"clusterIP": self.cluster_ip, "readyIPs": list(self.ready_ips),
                "ports": [{"name": p.name, "port": p.port, "protocol": p.protocol,
                           "endpoints": [f"{ip}:{port}" for ip, port in p.endpoints]} for p in self.ports]}


def condition(pod: Obj, type_: str) -> str | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c.get("status")
    return None


def pod_ready(pod: Obj) -> bool:
    return condition(pod, "Ready") == "True"


def pod_serving(pod: Obj, include_not_ready: bool = False) -> bool:
    status = pod.get("status") or {}
    if pod["metadata"].get("deletionTimestamp") or not status.get("podIP"):
        return False
    if status.get("phase") in ("Succeeded", "Failed"):
        return False
    return include_not_ready or pod_ready(pod)


def selects(selector: Mapping[str, str], labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def target_port(pod: Obj, port: Obj) -> int | None:
    """A Service port's targetPort on this pod: a number, or a container port's name."""
    target = port.get("targetPort", port["port"])
    if isinstance(target, int) or str(target).isdigit():
        return int(str(target))
    for container in (pod.get("spec") or {}).get("containers") or []:
        for cp in container.get("ports") or []:
            if cp.get("name") == target and cp.get("protocol", "TCP") == port.get("protocol", "TCP"):
                return int(cp["containerPort"])
    return None


def service_view(service: Obj, pods: Iterable[Obj]) -> ServiceView:
    meta, spec = service["metadata"], service.get("spec") or {}
    namespace = meta["namespace"]
    selector = spec.get("selector") or {}
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    members = sorted(
        (p for p in pods
         if p["metadata"].get("namespace") == namespace and selects(selector, p["metadata"].get("labels"))
         and pod_serving(p, publish_not_ready)),
        key=lambda p: p["status"]["podIP"],
    )
    ports = []
    for port in spec.get("ports") or []:
        endpoints = tuple((p["status"]["podIP"], t) for p in members if (t := target_port(p, port)) is not None)
        ports.append(PortView(port.get("name", ""), int(port["port"]), port.get("protocol", "TCP"), endpoints))
    cluster_ip = spec.get("clusterIP")
    return ServiceView(
        name=meta["name"],
        namespace=namespace,
        cluster_ip=cluster_ip if cluster_ip and cluster_ip != "None" else None,
        ports=tuple(ports),
        ready_ips=tuple(dict.fromkeys(p["status"]["podIP"] for p in members)),
    )


def service_views(services: Iterable[Obj], pods: Iterable[Obj]) -> list[ServiceView]:
    """Every Service with a selector (selector-less ones, like ``kubernetes``, have no pods to find)."""
    pods = list(pods)
    return [service_view(s, pods) for s in services
            if (s.get("spec") or {}).get("selector") and (s.get("spec") or {}).get("type") != "ExternalName"]
