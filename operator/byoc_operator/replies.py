"""Reading HTTP replies from parties the operator does not control (orchestrators, worker and router pods).

A reply is read only so far: a multi-gigabyte or endless body must not take the operator's memory or a reconcile
slot. What is not read is never drained; aiohttp closes the connection instead of reusing it.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

# A /health answer of a worker or router pod.
HEALTH_LIMIT = 64 * 1024


async def read_bounded(resp: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of the reply, and whether there was more."""
    out = bytearray()
    while len(out) <= limit:
        chunk = await resp.content.read(limit + 1 - len(out))
        if not chunk:
            return bytes(out), False
        out += chunk
    return bytes(out[:limit]), True


async def json_reply(resp: aiohttp.ClientResponse, limit: int = HEALTH_LIMIT) -> Any:
    """The reply's JSON, read up to `limit` bytes; ValueError if it is longer or not JSON."""
    data, more = await read_bounded(resp, limit)
    if more:
        raise ValueError(f"reply longer than {limit} bytes")
    return json.loads(data)
