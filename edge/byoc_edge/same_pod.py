"""Whether an HTTP caller runs in this pod (shares its network namespace): what guards ``/drain``."""

from __future__ import annotations

from aiohttp import web

# A pod's own loopback: nothing outside its network namespace connects from these.
_SELF = frozenset({"127.0.0.1", "::1"})


def same_host(peer: str, local: str) -> bool:
    """A connection from ``peer`` to ``local`` comes from this network namespace: from loopback, or from the very
    address it reached (a sidecar calling the pod IP), which no other host can have. The kubelet's ``httpGet``
    hooks come from the node, so they are not."""
    return peer in _SELF or peer == local


def from_this_pod(request: web.Request) -> bool:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport else None
    local = transport.get_extra_info("sockname") if transport else None
    if not isinstance(peer, tuple) or not isinstance(local, tuple):
        return False
    return same_host(str(peer[0]), str(local[0]))
