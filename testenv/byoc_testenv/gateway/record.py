"""What a gateway stream saw, across all its orchestrators: events, the last status, data lines, output segments,
and when input last went out. Written by the sessions (``session.py``), read by tests and the demo."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


class Lines:
    """Data lines as they arrive; any number of readers can follow them until the stream ends."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.closed = False
        self._changed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def append(self, line: str) -> None:
        self.items.append(line)
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set_result(None)
        self._changed = asyncio.get_running_loop().create_future()

    async def follow(self) -> AsyncIterator[str]:
        """Every line from the first, then new ones as they come, until :meth:`close`."""
        seen = 0
        while True:
            while seen < len(self.items):
                seen += 1
                yield self.items[seen - 1]
            if self.closed:
                return
            await asyncio.shield(self._changed)


@dataclass
class StreamRecord:
    keep_output: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)  # each event, unwrapped from its envelope
    status: dict[str, Any] | None = None  # the last "status" event (what GET /process/stream/{id}/status shows)
    data: Lines = field(default_factory=Lines)
    output_segments: int = 0
    output: list[bytes] = field(default_factory=list)  # the segments themselves, with keep_output
    last_input: float | None = None  # time.monotonic() of the last input segment's start (lastSegmentTime)

    def add_output(self, segment: bytes) -> None:
        self.output_segments += 1
        if self.keep_output:
            self.output.append(segment)

    def add_event(self, event: dict[str, Any]) -> None:
        """``startEventsSubscribe``: a ``status`` event keeps the last ``last_restart_logs``/``last_params`` of
        ``inference_status`` when it leaves them out."""
        self.events.append(event)
        if event.get("type") != "status":
            return
        inference = event.get("inference_status")
        previous = (self.status or {}).get("inference_status")
        if isinstance(inference, dict) and isinstance(previous, dict):
            for key in ("last_restart_logs", "last_params"):
                if inference.get(key) is None and key in previous:
                    inference[key] = previous[key]
        self.status = event

    def input_within(self, seconds: float) -> bool:
        """Whether an input segment started less than ``seconds`` ago ("hasRecentInput")."""
        return self.last_input is not None and time.monotonic() - self.last_input < seconds
