"""Progress lines for long steps (cold builds, cluster start), with a heartbeat so CI logs show life."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

HEARTBEAT_SECONDS = 15.0


def format_elapsed(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds:02d}s"


class Progress:
    """Writes `[byoc-testenv] ...` lines to a stream (stderr by default), flushed at once."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self._stream = stream
        self.quiet = quiet
        self._lock = threading.Lock()

    def say(self, message: str) -> None:
        if self.quiet:
            return
        stream = self._stream or sys.stderr
        with self._lock:
            stream.write(f"[byoc-testenv] {message}\n")
            stream.flush()

    def heartbeat(self, what: str, status: Callable[[], str] | None = None,
                  every: float = HEARTBEAT_SECONDS) -> Heartbeat:
        return Heartbeat(self, what, status, every)


class Heartbeat:
    """Context manager: prints `what: <elapsed> elapsed, <status>` every `every` seconds until it exits."""

    def __init__(self, progress: Progress, what: str, status: Callable[[], str] | None, every: float) -> None:
        self.progress = progress
        self.what = what
        self.status = status
        self.every = every
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="byoc-testenv-heartbeat", daemon=True)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _line(self) -> str:
        extra = self.status() if self.status else ""
        return f"{self.what}: {format_elapsed(self.elapsed)} elapsed" + (f", {extra}" if extra else "")

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.progress.say(self._line())

    def __enter__(self) -> Heartbeat:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
