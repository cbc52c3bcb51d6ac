"""Helpers for the gateway tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from byoc_testenv.gateway import GatewayStream, StreamEnd

T = TypeVar("T")


async def eventually(check: Callable[[], T], seconds: float, what: str, interval: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; fail with the last value seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    last: T = check()
    while not last:
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}; last seen: {last!r}")
        await asyncio.sleep(interval)
        last = check()
    return last


async def ended(stream: GatewayStream, seconds: float) -> StreamEnd:
    async with asyncio.timeout(seconds):
        return await stream.ended()
