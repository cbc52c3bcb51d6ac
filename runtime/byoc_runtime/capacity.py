"""Which sessions run, and whether there is room for another.

go-livepeer does not enforce a capability's capacity (protocols.md 3a: the orchestrator resets its in-use
count on re-registration and gateways only read it), so the worker must refuse work when full: a start
beyond capacity is answered 503 with a reason. A start repeating a running session's
``gateway_request_id`` is a retry and gets that session back, not a second one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar


class StartRefused(Exception):
    """The worker cannot take this stream now (HTTP 503)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # "loading", "capacity", "error", "draining"


class StartInvalid(Exception):
    """This start can never run as asked (HTTP 400, or 409 for a stream id already running elsewhere)."""

    def __init__(self, message: str, reason: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason  # "origin", "output_size", "conflict"
        self.status = status


class _Session(Protocol):
    request_id: str
    stream_id: str

    @property
    def active(self) -> bool: ...


S = TypeVar("S", bound=_Session)


class SessionTable(Generic[S]):
    """Sessions by gateway request id, also found by their ``X-Stream-Id``."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._sessions: dict[str, S] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[S]:
        return iter(list(self._sessions.values()))

    def get(self, key: str) -> S | None:
        """By gateway request id first, then by stream id."""
        found = self._sessions.get(key)
        if found is not None:
            return found
        return next((s for s in self._sessions.values() if s.stream_id == key), None)

    @property
    def room(self) -> int:
        return self.capacity - len(self._sessions)

    def add(self, session: S) -> None:
        if session.request_id in self._sessions:
            raise ValueError(f"session {session.request_id} already present")
        if self.room <= 0:
            raise StartRefused(f"at capacity ({len(self)}/{self.capacity} sessions)", "capacity")
        self._sessions[session.request_id] = session

    def remove(self, session: S) -> None:
        if self._sessions.get(session.request_id) is session:
            del self._sessions[session.request_id]
