"""asyncio/aiohttp helpers: the session a client uses (the caller's, or its own), task cancellation."""

from __future__ import annotations

import asyncio
from typing import TypeVar

import aiohttp

T = TypeVar("T")


class SessionHolder:
    def __init__(self, session: aiohttp.ClientSession | None, verify_ssl: bool) -> None:
        self._session = session
        self._owned = session is None
        self._verify_ssl = verify_ssl
        self._closed = False

    def get(self) -> aiohttp.ClientSession:
        if self._closed:
            # A late retry must not open a fresh session that nobody closes.
            raise aiohttp.ClientConnectionError("trickle client is closed")
        # Created lazily: a ClientSession must be made inside the running loop.
        if self._session is None:
            # Orchestrators serve trickle over HTTPS with self-signed certificates by default,
            # so, like PyTrickle and ai-runner, certificates are not verified unless asked.
            connector = aiohttp.TCPConnector(ssl=self._verify_ssl)
            # No session-wide timeout: segments and pre-connects are long-lived by design;
            # each request sets its own connect timeout.
            self._session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    async def close(self) -> None:
        self._closed = True
        if self._owned and self._session is not None:
            session, self._session = self._session, None
            await session.close()


# A body (or the headers) that sends nothing for this long is stalled: a live segment gets bytes every frame, and
# subscribers re-issue a GET still waiting for its headers after 20 s (PRECONNECT_REFRESH_S) anyway.
SOCK_READ_TIMEOUT_S = 30.0


def request_timeout(connect_timeout: float, sock_read: float | None = SOCK_READ_TIMEOUT_S) -> aiohttp.ClientTimeout:
    """Bound connection setup, and each wait for bytes; a whole body may stream for long."""
    return aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, connect=connect_timeout, sock_read=sock_read)


async def cancel_and_wait(task: asyncio.Task[T]) -> T | None:
    """Cancel a helper task and wait for it; its result if it had already finished, else None.

    Only the helper's own cancellation is swallowed, never the caller's.
    """
    task.cancel()
    try:
        return await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
        return None
    except Exception:
        return None


def describe(exc: BaseException) -> str:
    """Short text for logs: aiohttp's reprs of connection errors are very long."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
