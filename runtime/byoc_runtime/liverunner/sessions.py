"""Live Runner sessions of one worker: a proxied app request becomes a session of the ``Worker``.

The client reserves a session at the orchestrator and calls ``POST {app_url}/live-video-to-video`` (or
``/stream/start``); the orchestrator proxies it here with the ``Livepeer-Session-*`` headers. Then:

1. refuse early (503 with a reason) when the worker is draining or full, releasing the reservation at once so
   it does not pin the orchestrator's capacity;
2. ``POST {Session-Control}/channels`` for in/out/control/events/data;
3. start a ``Session`` through ``Worker.start_session`` on the channels' ``internal_url``s: the same pipeline as
   a BYOC ``/stream/start``, keyed by the Live Runner session id;
4. answer the client with the public ``url``s in the live-video-to-video job shape the Python SDK parses
   (``livepeer_gateway.lv2v.LiveVideoToVideo.from_json``: ``manifest_id``, ``publish_url`` = where the client
   publishes = "in", ``subscribe_url`` = "out", ``control_url``, ``events_url``) plus ``data_url``;
5. when the session ends, for whatever reason, ``POST {Session-Control}/stop`` releases the slot.

The client's body gives ``params`` (and any other keys, passed on to the processor as in BYOC); trickle URLs in
it are ignored: only the orchestrator's channels are used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp
from byoc_edge.liverunner import CONTROL, DATA, EVENTS, IN, OUT, Channel, SessionContext
from byoc_edge.schema import StreamParams, StreamStartRequest
from pydantic import ValidationError

from ..capacity import StartRefused
from ..processors.pool import PoolState
from ..session import Session
from ..worker import Worker
from .control import CallbackError, create_channels, stop_session

log = logging.getLogger(__name__)

URL_KEYS = ("subscribe_url", "publish_url", "control_url", "events_url", "data_url")


def start_request(context: SessionContext, body: dict[str, Any], channels: dict[str, Channel]) -> StreamStartRequest:
    """The worker-side start: the runner reads "in" and writes "out" at their internal URLs."""
    fields = {k: v for k, v in body.items() if k not in URL_KEYS}
    fields.update(
        gateway_request_id=context.session_id,
        subscribe_url=channels[IN].runner_url,
        publish_url=channels[OUT].runner_url,
        control_url=channels[CONTROL].runner_url,
        events_url=channels[EVENTS].runner_url,
        data_url=channels[DATA].runner_url,
    )
    if body.get("gateway_request_id"):
        fields["client_request_id"] = body["gateway_request_id"]  # kept for the processor and logs
    request = StreamStartRequest.model_validate(fields)
    request.report_urls_as(
        {
            "subscribe": channels[IN].url,
            "publish": channels[OUT].url,
            "control": channels[CONTROL].url,
            "events": channels[EVENTS].url,
            "data": channels[DATA].url,
        }
    )
    return request


def client_reply(context: SessionContext, channels: dict[str, Channel], created: bool) -> dict[str, Any]:
    """What the client gets: public URLs only, named from the client's side (it publishes "in")."""
    sid = context.session_id
    return {
        "status": "success",
        "message": "Stream started successfully" if created else "Stream already running",
        "session_id": sid,
        "manifest_id": sid,
        "stream_id": sid,
        "request_id": sid,
        "publish_url": channels[IN].url,
        "subscribe_url": channels[OUT].url,
        "control_url": channels[CONTROL].url,
        "events_url": channels[EVENTS].url,
        "data_url": channels[DATA].url,
    }


class LiveRunnerSessions:
    """Starts Live Runner sessions on a worker and releases them at their orchestrator when they end."""

    def __init__(self, worker: Worker, callback_timeout_s: float = 10.0) -> None:
        self.worker = worker
        self.callback_timeout_s = callback_timeout_s
        self._http: aiohttp.ClientSession | None = None
        self._channels: dict[str, dict[str, Channel]] = {}  # by session id, while the session runs
        self._watchers: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            # Orchestrators serve HTTPS with self-signed certificates by default; trickle clients do not verify
            # either (pytrickle precedent), and the session token only ever goes to the URL the proxy named.
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False))
        return self._http

    def _refusal(self, session_id: str) -> StartRefused | None:
        """Why a new session cannot start now, before any channel is made (the worker checks again later)."""
        running = self.worker.sessions.get(session_id)
        if running is not None and running.active:
            return None
        if self.worker.draining:
            return StartRefused("worker is draining: running sessions continue, new ones go elsewhere", "draining")
        if self.worker.pool.state is PoolState.ERROR:
            return StartRefused(f"processor failed to load: {self.worker.pool.error}", "error")
        if self.worker.sessions.room <= 0:
            return StartRefused(
                f"at capacity ({len(self.worker.sessions)}/{self.worker.sessions.capacity} sessions)", "capacity"
            )
        return None

    async def start(self, context: SessionContext, body: dict[str, Any]) -> dict[str, Any]:
        """Start (or return the running) session for ``context``. Raises ``pydantic.ValidationError`` (bad params),
        ``StartRefused`` (the reservation is released first) or ``CallbackError`` (the orchestrator failed us)."""
        try:
            StreamParams.model_validate(body.get("params") or {})
        except ValidationError:
            # The orchestrator reserved the session before proxying the start: a refused start gives it back.
            if self.worker.sessions.get(context.session_id) is None:
                await self._release(context, "refused (invalid params)")
            raise
        # One start at a time per worker: the refusal check and the start stay consistent.
        async with self._lock:
            running = self.worker.sessions.get(context.session_id)
            if running is not None and running.active and context.session_id in self._channels:
                return client_reply(context, self._channels[context.session_id], created=False)  # a retry
            refusal = self._refusal(context.session_id)
            if refusal is not None:
                await self._release(context, f"refused ({refusal.reason})")
                raise refusal
            try:
                channels = await create_channels(self._client(), context, timeout_s=self.callback_timeout_s)
                session, created = await self.worker.start_session(
                    start_request(context, body, channels), context.session_id
                )
            except StartRefused as exc:
                await self._release(context, f"refused ({exc.reason})")
                raise
            except BaseException as exc:
                await asyncio.shield(self._release(context, f"not started ({type(exc).__name__})"))
                raise
        if created:
            self._channels[context.session_id] = channels
            watcher = asyncio.create_task(self._release_at_end(session, context), name=f"lr-{context.session_id}")
            self._watchers.add(watcher)
            watcher.add_done_callback(self._watchers.discard)
            log.info("live runner session %s started (route %s)", context.session_id, context.route or "-")
        return client_reply(context, self._channels.get(context.session_id, channels), created)

    async def _release_at_end(self, session: Session, context: SessionContext) -> None:
        await session.wait()
        self._channels.pop(context.session_id, None)
        await self._release(context, f"ended: {session.stop_reason or session.state.value}")

    async def _release(self, context: SessionContext, why: str) -> None:
        released = await stop_session(self._client(), context, timeout_s=self.callback_timeout_s)
        log.info("live runner session %s %s; %s", context.session_id, why, "released" if released else "NOT released")

    async def close(self, limit_s: float = 10.0) -> None:
        """After the worker stopped its sessions: let the release callbacks finish (bounded), then close."""
        if self._watchers:
            _, pending = await asyncio.wait(set(self._watchers), timeout=limit_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._http is not None:
            with contextlib.suppress(Exception):
                await self._http.close()


__all__ = ["CallbackError", "LiveRunnerSessions", "client_reply", "start_request"]
