"""Trickle channels the orchestrator owns, on the test trickle server (``byoc_testenv.trickle``).

go-livepeer creates channels in-process (``trickle.NewLocalPublisher(...).CreateChannel()``) on the trickle
server mounted in the orchestrator itself; here the trickle server is a separate process, and its testenv-only
``PUT {base}{name}`` route stands in for that call. Messages the orchestrator writes itself (the Live Runner
``o2r`` channel) are published as one segment each with ``POST {base}{name}/-1`` ("next").
"""

from __future__ import annotations

import logging

import aiohttp

log = logging.getLogger(__name__)


def channel_url(base_url: str, name: str) -> str:
    return base_url.rstrip("/") + "/" + name


class TrickleChannels:
    """Creates, deletes and writes channels under one trickle base URL (``http://host:port/ai/trickle/``)."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"

    def url(self, name: str) -> str:
        return channel_url(self.base_url, name)

    async def create(self, name: str, mime_type: str) -> str:
        async with self.http.put(self.url(name), headers={"Expect-Content": mime_type}) as resp:
            resp.raise_for_status()
        return self.url(name)

    async def delete(self, name: str) -> None:
        """Close a channel; an unknown one is fine (the server may have swept it already)."""
        try:
            async with self.http.delete(self.url(name)) as resp:
                await resp.read()
        except aiohttp.ClientError as exc:
            log.debug("delete of channel %s failed: %r", name, exc)

    async def publish(self, name: str, payload: bytes) -> bool:
        """Write one segment; False when the channel is gone (404) or the server is unreachable."""
        try:
            async with self.http.post(self.url(name) + "/-1", data=payload) as resp:
                await resp.read()
                return resp.status < 400
        except aiohttp.ClientError as exc:
            log.debug("publish on channel %s failed: %r", name, exc)
            return False
