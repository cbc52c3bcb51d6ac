"""Whether an HTTP caller runs in this pod (shares its network namespace): what guards ``/drain``."""

from __future__ import annotations

import ipaddress

from aiohttp import web


def from_this_pod(request: web.Request) -> bool:
    """The caller connected from loopback, or from the very address it connected to (a sidecar calling the pod
    IP): no other host can have that address. The kubelet's ``httpGet`` hooks come from the node, so they are not."""
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport else None
    local = transport.get_extra_info("sockname") if transport else None
    if not isinstance(peer, tuple) or not isinstance(local, tuple):
        return False
    try:
        address = ipaddress.ip_address(peer[0])
    except ValueError:
        return False
    return address.is_loopback or peer[0] == local[0]
