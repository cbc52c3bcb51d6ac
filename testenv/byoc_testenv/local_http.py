"""A small HTTP peer for a test: an aiohttp app on a free loopback port, stopped when the block ends."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web


@contextlib.asynccontextmanager
async def serving(app: web.Application, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve `app` on a free port of `host`; yields its base URL (``http://host:port``)."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = runner.addresses[0][1]  # started: it listens
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
