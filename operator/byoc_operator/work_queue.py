"""When reconciles run: one at a time per worker, coalesced, bounded overall, retried with back-off on failure."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from byoc_operator import metrics
from byoc_operator.index import Key

log = logging.getLogger(__name__)


class WorkQueue:
    """Runs `run(key)` for the keys triggered: a burst of triggers before a run starts makes one run, and a
    trigger during a run makes one more after it."""

    def __init__(self, run: Callable[[Key], Awaitable[None]], concurrency: int) -> None:
        self._run = run
        self._slots = asyncio.Semaphore(concurrency)
        self._dirty: set[Key] = set()
        self._running: dict[Key, asyncio.Task[None]] = {}
        self._retries: dict[Key, int] = {}
        self._timers: dict[tuple[str, Key], asyncio.TimerHandle] = {}

    def trigger(self, key: Key) -> None:
        """Ask for a run for this key soon; many triggers before it runs make one run."""
        self._dirty.add(key)
        if key not in self._running:
            self._running[key] = asyncio.create_task(self._drain(key), name=f"reconcile {key[0]}/{key[1]}")

    def later(self, purpose: str, key: Key, seconds: float) -> None:
        """One pending wake-up per key and purpose, replaced by each call."""
        handle = self._timers.pop((purpose, key), None)
        if handle:
            handle.cancel()
        self._timers[(purpose, key)] = asyncio.get_running_loop().call_later(seconds, self.trigger, key)

    def failures(self, key: Key) -> int:
        """How many runs in a row failed for this key."""
        return self._retries.get(key, 0)

    async def idle(self) -> None:
        """Wait until no run is queued or running."""
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    async def close(self) -> None:
        """Stop queued and running runs, and every pending wake-up."""
        self._dirty.clear()
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
        for handle in self._timers.values():
            handle.cancel()

    async def _drain(self, key: Key) -> None:
        try:
            while key in self._dirty:
                self._dirty.discard(key)
                async with self._slots:
                    try:
                        with metrics.RECONCILE_SECONDS.time():
                            await self._run(key)
                        metrics.RECONCILES.labels("ok").inc()
                        self._retries.pop(key, None)
                    except Exception as exc:  # one bad object must never stop the others
                        metrics.RECONCILES.labels("error").inc()
                        self._schedule_retry(key, exc)
        finally:
            self._running.pop(key, None)

    def _schedule_retry(self, key: Key, exc: BaseException) -> None:
        attempt = self._retries.get(key, 0) + 1
        self._retries[key] = attempt
        delay = min(300.0, 2.0**attempt)
        # The exception's type too: some (timeouts, assertions) have no message.
        why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.warning("reconcile of %s/%s failed (attempt %d, retry in %.0fs): %s", *key, attempt, delay, why)
        asyncio.get_running_loop().call_later(delay, self.trigger, key)
