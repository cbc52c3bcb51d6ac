"""The registrar over time: watch the worker, heartbeat every orchestrator, drain and unregister at the end.

- The worker's ``/health`` is read every ``probe_interval``; a change of readiness is pushed to every
  orchestrator at once instead of waiting for the next heartbeat.
- Each orchestrator has its own heartbeat loop at the interval it announced (a failed one is retried sooner).
- Draining (SIGTERM, or ``/drain`` on the registrar's port from the worker container's preStop hook): ask the
  worker to refuse new sessions, keep heartbeating "ready" with the capacity shrunk to the sessions held, wait
  until the worker runs no stream (or ``drain_seconds`` passed, or ``hurry()``), then unregister everywhere.
- Drain only (``--drain-only``, no orchestrators): the same drain with nothing to unregister, so the preStop hook
  of any worker image waits until its ``/health`` says idle (IDLE, or ``active_streams`` 0).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import aiohttp

from .advert import build_advert, runner_status
from .config import OrchestratorTLS, RegistrarConfig
from .credentials import Redactor
from .local_worker import LocalWorker
from .metrics import RegistrarMetrics
from .registration import Outcome, Registration, RegistrationError

log = logging.getLogger(__name__)

RETRY_S = 1.0  # a failed heartbeat is retried this soon (capped by the interval)


class Registrar:
    def __init__(
        self, config: RegistrarConfig, redactor: Redactor | None = None, metrics: RegistrarMetrics | None = None
    ) -> None:
        self.config = config
        self.redactor = redactor
        self.metrics = metrics or RegistrarMetrics()
        self.draining = False
        self.done = asyncio.Event()
        self._orch_http: aiohttp.ClientSession | None = None
        self._worker_http: aiohttp.ClientSession | None = None
        self.worker: LocalWorker | None = None
        self.registrations: list[Registration] = []
        self._wake: dict[int, asyncio.Event] = {}
        self._stop_beats = asyncio.Event()
        self._hurry = asyncio.Event()
        self._probed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._drain_task: asyncio.Task[None] | None = None
        self._drain_started = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        c = self.config
        # One session; each orchestrator's requests carry its own SSL context (connections are pooled per context).
        self._orch_http = aiohttp.ClientSession()
        self._worker_http = aiohttp.ClientSession()
        self.worker = LocalWorker(c.worker_url, self._worker_http, c.unready_after, c.request_timeout)
        self.registrations = [
            Registration(
                o.url, o.secret, self._orch_http, c.runner_id, c.request_timeout, self.redactor, self.ssl_context(o.tls)
            )
            for o in c.orchestrators
        ]
        await self._probe()  # the first heartbeat already says whether the worker is ready
        self._tasks = [asyncio.create_task(self._probe_loop(), name="probe")]
        for index, registration in enumerate(self.registrations):
            self._wake[index] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._heartbeat_loop(index, registration), name=f"beat-{index}"))
        if c.drain_only:
            log.info("drain-only registrar for the worker at %s (grace %gs)", c.worker_url, c.drain_seconds)
            return
        log.info(
            "registrar for %s at %s: app %s, %d orchestrators",
            c.runner_id or "(id from orchestrator)",
            c.runner_url,
            c.app,
            len(self.registrations),
        )

    async def run(self) -> None:
        """Until drained (``drain()``), then close."""
        if self.done.is_set():
            return  # drained (SIGTERM) before it started: never register, so nothing is left behind
        await self.start()
        try:
            await self.done.wait()
        finally:
            await self.close()

    async def close(self) -> None:
        self._stop_beats.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._drain_task is not None and not self._drain_task.done():
            self._drain_task.cancel()
            await asyncio.gather(self._drain_task, return_exceptions=True)
        for http in (self._orch_http, self._worker_http):
            if http is not None:
                await http.close()

    def ssl_context(self, tls: OrchestratorTLS) -> ssl.SSLContext:
        """One orchestrator's SSL context, from its own settings only."""
        return tls.ssl_context()

    # -- worker ------------------------------------------------------------------------------------------

    async def _probe(self) -> None:
        assert self.worker is not None
        was_ready = self.worker.state.ready
        state = await self.worker.refresh()
        self.metrics.worker_ready.set(1 if state.ready else 0)
        self._probed.set()
        if state.ready != was_ready:
            self._wake_all()

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.probe_interval)
            try:
                await self._probe()
            except Exception:
                log.exception("worker probe failed")

    # -- heartbeats --------------------------------------------------------------------------------------

    def _wake_all(self) -> None:
        for event in self._wake.values():
            event.set()

    def advert_for(self, registration: Registration) -> Any:
        assert self.worker is not None
        return build_advert(
            self.config,
            self.worker.state,
            runner_id=registration.runner_id or self.config.runner_id,
            draining=self.draining,
            held_sessions=self._held(registration),
            gpu=self.worker.gpu,
            worker_version=self.worker.version,
        )

    def _held(self, registration: Registration) -> int:
        """Sessions on this runner: what the orchestrator said it holds at the last heartbeat (which may lag a
        reservation), or what the worker runs, whichever is more (a pytrickle worker only says OK: one)."""
        assert self.worker is not None
        state = self.worker.state
        running = state.active_streams if state.active_streams is not None else int(state.streaming)
        return max(len(registration.session_ids), running)

    async def beat(self, registration: Registration) -> None:
        """One heartbeat to one orchestrator; failures are logged once per distinct message."""
        advert = self.advert_for(registration)
        try:
            outcome = await registration.heartbeat(advert)
        except RegistrationError as exc:
            outcome = Outcome.FAILED
            message = str(exc)
            if message != registration.last_error:
                log.warning("%s", message)
            registration.last_error = message
        self.metrics.heartbeats.labels(registration.url, outcome.value).inc()
        self.metrics.registered.labels(registration.url).set(1 if registration.registered else 0)
        self.metrics.sessions_held.labels(registration.url).set(len(registration.session_ids))
        if outcome in (Outcome.REGISTERED, Outcome.REREGISTERED):
            log.info("runner %s at %s is %s", registration.runner_id, registration.url, advert.status or "ready")

    async def _heartbeat_loop(self, index: int, registration: Registration) -> None:
        loop = asyncio.get_running_loop()
        wake = self._wake[index]
        failures = 0
        while not self._stop_beats.is_set():
            started = loop.time()
            wake.clear()
            await self.beat(registration)
            ok = registration.registered and not registration.last_error
            failures = 0 if ok else failures + 1
            # Retry soon after one failure, then back off to the interval: a struggling orchestrator
            # must not get more heartbeats than a healthy one.
            delay = registration.interval if ok else min(registration.interval, RETRY_S * 2 ** (failures - 1))
            await wait_any(self._stop_beats, wake, limit_s=started + delay - loop.time())

    # -- drain -------------------------------------------------------------------------------------------

    def drain(self) -> asyncio.Task[None]:
        """Start draining (idempotent); the task ends once every orchestrator was told to forget the runner."""
        if self._drain_task is None:
            self._drain_task = asyncio.create_task(self._drain(), name="drain")
            self._drain_started.set()
        return self._drain_task

    async def drain_requested(self, limit_s: float) -> asyncio.Task[None] | None:
        """The drain task once something started one (within ``limit_s``), else None."""
        try:
            await asyncio.wait_for(self._drain_started.wait(), limit_s)
        except TimeoutError:
            return None
        return self._drain_task

    def hurry(self) -> None:
        """Stop waiting for running sessions: unregister now (a second SIGTERM)."""
        self._hurry.set()
        self.drain()

    async def _drain(self) -> None:
        if self.worker is None:  # stopped before it started: nothing registered
            self.done.set()
            return
        loop = asyncio.get_running_loop()
        self.draining = True
        self.metrics.draining.set(1)
        log.info("draining: no new sessions; waiting up to %gs for running ones", self.config.drain_seconds)
        await self.worker.drain()
        await self._probe()  # what runs now decides whether the runner may still say "ready"
        self._wake_all()  # the shrunken capacity goes out now
        deadline = loop.time() + self.config.drain_seconds
        while self.worker.state.streaming and not self._hurry.is_set():
            left = deadline - loop.time()
            if left <= 0:
                log.warning("drain: grace period over with sessions still running; unregistering anyway")
                break
            self._probed.clear()
            await wait_any(self._probed, self._hurry, limit_s=left)
        await self._stop_heartbeats()
        results = await asyncio.gather(*(r.unregister() for r in self.registrations))
        for registration in self.registrations:
            self.metrics.registered.labels(registration.url).set(1 if registration.registered else 0)
        log.info("drained: unregistered from %d of %d orchestrators", sum(results), len(results))
        self.done.set()

    async def _stop_heartbeats(self) -> None:
        """Let heartbeats in flight finish (a registration cut in half would leave a runner we cannot remove)."""
        self._stop_beats.set()
        beats = [t for t in self._tasks if t.get_name().startswith("beat-")]
        if beats:
            _, pending = await asyncio.wait(beats, timeout=self.config.request_timeout + 1)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # -- reporting ---------------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        state = self.worker.state if self.worker else None
        return {
            "status": "draining" if self.draining else "running",
            "runner_url": self.config.runner_url,
            "app": self.config.app,
            "worker": {
                "health": state.health if state else None,
                "runner_status": runner_status(state) if state else None,
                "active_streams": state.active_streams if state else None,
                "drain_supported": self.worker.drain_supported if self.worker else None,
            },
            "orchestrators": [r.describe() for r in self.registrations],
        }


async def wait_any(*events: asyncio.Event, limit_s: float) -> None:
    """Until one of ``events`` is set or ``limit_s`` seconds passed."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=max(0.0, limit_s), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
