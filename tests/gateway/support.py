"""Helpers for the gateway tests."""

from __future__ import annotations

import asyncio
from typing import TypeVar

from byoc_testenv.gateway import GatewayStream, StreamEnd

T = TypeVar("T")


async def ended(stream: GatewayStream, seconds: float) -> StreamEnd:
    async with asyncio.timeout(seconds):
        return await stream.ended()
