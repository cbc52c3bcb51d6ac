"""The runner's registration with ONE orchestrator (go-livepeer ``LiveRunnerRegistry.Heartbeat`` / ``Unregister``).

- Register: ``POST {configured url}/runners/heartbeat`` with the orchestrator secret. The reply gives the
  ``heartbeat_secret`` (used from then on), the runner-facing ``orchestrator`` base URL (heartbeats and the
  unregister go there), the ``heartbeat_interval`` and the sessions the orchestrator holds for this runner.
- Heartbeat with the ``heartbeat_secret``. 404 (expired, or forgotten after a restart) and 401 (the runner id
  is unknown again, so the heartbeat secret no longer fits) both mean: register again from the orchestrator
  secret. A 401 on registering means a wrong secret, or the runner id is still held by an earlier
  registration of this pod (a restarted registrar lost its heartbeat secret): retried until that one expires.
- Unregister: ``POST {orchestrator}/runners/{id}/unregister`` -> 204.

Nothing here logs or raises a secret: errors carry status codes and the orchestrator's message.
"""

from __future__ import annotations

import enum
import json
import logging
import ssl
import time
from typing import Any

import aiohttp

from ..liverunner import (
    DEFAULT_HEARTBEAT_INTERVAL,
    HEARTBEAT_PATH,
    HeartbeatReply,
    RunnerAdvert,
    join_url,
    unregister_path,
)
from ..rest import describe_client_error as describe
from .credentials import CredentialError, Redactor, SecretSource

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    HEARTBEAT = "heartbeat"
    REGISTERED = "registered"
    REREGISTERED = "reregistered"
    FAILED = "failed"


class RegistrationError(Exception):
    """A heartbeat or registration that did not succeed (message safe to log)."""


class Registration:
    def __init__(
        self,
        url: str,
        secret: SecretSource,
        http: aiohttp.ClientSession,
        runner_id: str = "",
        timeout_s: float = 5.0,
        redactor: Redactor | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url.rstrip("/")  # where registration happens (as configured)
        self.secret = secret
        self.http = http
        # This orchestrator's own TLS (its CA, or no verification): never shared with another orchestrator.
        self.tls = tls if tls is not None else ssl.create_default_context()
        self.runner_id = runner_id
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.redactor = redactor
        self.base_url = self.url  # runner-facing URL from the last reply
        self.interval = DEFAULT_HEARTBEAT_INTERVAL
        self.ttl: float | None = None
        self.session_ids: tuple[str, ...] = ()
        self.last_ok: float | None = None  # monotonic time of the last accepted heartbeat
        self.last_error = ""
        self.registrations = 0
        self._heartbeat_secret = ""

    @property
    def registered(self) -> bool:
        return bool(self._heartbeat_secret)

    async def _post(self, url: str, auth: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        try:
            async with self.http.post(
                url,
                json=body,
                headers={"Authorization": auth},
                timeout=self.timeout,
                allow_redirects=False,
                ssl=self.tls,
            ) as resp:
                text = await resp.text(errors="replace")
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RegistrationError(f"{url}: {describe(exc)}") from None
        if status == 200:
            try:
                return status, json.loads(text) if text else None
            except ValueError:
                raise RegistrationError(f"{url}: reply is not JSON") from None
        return status, text.strip()[:200]

    def _accept(self, reply: HeartbeatReply) -> None:
        self.runner_id = reply.runner_id
        if reply.orchestrator:
            if reply.orchestrator != self.base_url:
                log.info("orchestrator %s: runner-facing URL is %s", self.url, reply.orchestrator)
            self.base_url = reply.orchestrator
        if reply.heartbeat_interval and reply.heartbeat_interval > 0:
            self.interval = reply.heartbeat_interval
        self.ttl = reply.heartbeat_ttl
        self.session_ids = reply.session_ids
        self.last_ok = time.monotonic()
        self.last_error = ""

    async def heartbeat(self, advert: RunnerAdvert) -> Outcome:
        """One heartbeat (registering first when needed). Raises ``RegistrationError``."""
        if not self.registered:
            return await self._register(advert, Outcome.REGISTERED)
        status, data = await self._post(
            join_url(self.base_url, HEARTBEAT_PATH), self._heartbeat_secret, self._body(advert)
        )
        if status in (401, 404):
            log.info(
                "orchestrator %s no longer knows runner %s (%d): registering again", self.url, self.runner_id, status
            )
            self._heartbeat_secret = ""
            return await self._register(advert, Outcome.REREGISTERED)
        if status != 200:
            raise RegistrationError(f"heartbeat to {self.base_url} answered {status}: {data}")
        try:
            self._accept(HeartbeatReply.from_json(data))
        except ValueError as exc:
            raise RegistrationError(f"heartbeat to {self.base_url}: {exc}") from None
        return Outcome.HEARTBEAT

    def _body(self, advert: RunnerAdvert) -> dict[str, Any]:
        body = advert.to_json()
        if self.runner_id:
            body["runner_id"] = self.runner_id  # an id the orchestrator gave us stays ours
        return body

    async def _register(self, advert: RunnerAdvert, outcome: Outcome) -> Outcome:
        self.base_url = self.url
        try:
            secret = self.secret.read()
        except CredentialError as exc:
            raise RegistrationError(str(exc)) from None
        if self.redactor is not None:
            self.redactor.add(secret)
        status, data = await self._post(join_url(self.url, HEARTBEAT_PATH), secret, self._body(advert))
        if status == 401:
            raise RegistrationError(
                f"registration at {self.url} refused (401: {data}): a wrong orchestrator secret, or runner id "
                f"{self.runner_id!r} is still held by an earlier registration until it expires"
            )
        if status != 200:
            raise RegistrationError(f"registration at {self.url} answered {status}: {data}")
        try:
            reply = HeartbeatReply.from_json(data)
        except ValueError as exc:
            raise RegistrationError(f"registration at {self.url}: {exc}") from None
        if not reply.heartbeat_secret:
            raise RegistrationError(f"registration at {self.url}: the reply has no heartbeat_secret")
        if self.redactor is not None:
            self.redactor.add(reply.heartbeat_secret)
        self._heartbeat_secret = reply.heartbeat_secret
        self._accept(reply)
        self.registrations += 1
        log.info(
            "registered runner %s with %s (heartbeat every %gs, %d sessions held)",
            self.runner_id,
            self.url,
            self.interval,
            len(self.session_ids),
        )
        return outcome

    async def unregister(self) -> bool:
        """True when the orchestrator no longer lists the runner (204, or 404: it was gone already)."""
        if not self.registered:
            return True
        try:
            status, data = await self._post(
                join_url(self.base_url, unregister_path(self.runner_id)), self._heartbeat_secret
            )
        except RegistrationError as exc:
            log.warning("unregister of runner %s failed: %s", self.runner_id, exc)
            return False
        if status in (200, 204, 404):
            self._heartbeat_secret = ""
            log.info("unregistered runner %s from %s (%d)", self.runner_id, self.url, status)
            return True
        log.warning("unregister of runner %s from %s answered %d: %s", self.runner_id, self.url, status, data)
        return False

    def describe(self) -> dict[str, Any]:
        """For the registrar's ``/health``: no secrets."""
        return {
            "url": self.url,
            "runner_facing_url": self.base_url,
            "runner_id": self.runner_id,
            "registered": self.registered,
            "heartbeat_interval_s": self.interval,
            "sessions_held": len(self.session_ids),
            "last_heartbeat_age_s": round(time.monotonic() - self.last_ok, 1) if self.last_ok else None,
            "last_error": self.last_error,
        }
