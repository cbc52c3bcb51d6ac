"""What a finished session must not leave behind: its asyncio tasks and its aiohttp client sessions."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Collection

import aiohttp


def runtime_tasks() -> set[asyncio.Task[object]]:
    """Live tasks running byoc_runtime code (sessions, their stages, trickle readers and writers)."""
    return {
        t
        for t in asyncio.all_tasks()
        if not t.done() and "byoc_runtime" in getattr(getattr(t.get_coro(), "cr_code", None), "co_filename", "")
    }


def open_client_sessions() -> set[aiohttp.ClientSession]:
    return {o for o in gc.get_objects() if type(o) is aiohttp.ClientSession and not o.closed}


async def settle(left: Callable[[], Collection[object]], limit_s: float = 15.0) -> None:
    """Wait until nothing is left (stopping is asynchronous); fail naming what still is."""
    deadline = time.monotonic() + limit_s
    while (remaining := left()) and time.monotonic() < deadline:  # noqa: ASYNC110 (polling state)
        await asyncio.sleep(0.05)
    assert not remaining, f"left behind after {limit_s:.0f} s: {remaining}"
