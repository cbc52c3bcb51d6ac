"""``pytrickle.utils.register`` stand-in: ``RegisterCapability`` (v0.1.8 ``utils/register.py``), registering
this worker with an orchestrator's ``/capability/register``.

Each value comes from the argument, else the environment (``ORCH_URL``, ``ORCH_SECRET``, ``CAPABILITY_NAME``,
``CAPABILITY_DESCRIPTION``, ``CAPABILITY_CAPACITY``, ``CAPABILITY_PRICE_PER_UNIT``, ``CAPABILITY_PRICE_SCALING``),
else a default; the worker URL always comes from ``CAPABILITY_URL``. The secret goes raw in ``Authorization``
(go-livepeer's format). 200 returns the parsed URL; 400 (wrong secret) returns False at once; other failures
are retried ``max_retries`` times, ``delay`` seconds apart, then False. Nothing is raised.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any
from urllib.parse import ParseResult, urlparse

import aiohttp


class RegisterCapability:
    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(__name__)

    async def register_capability(
        self,
        orch_url: str | None = None,
        orch_secret: str | None = None,
        capability_name: str | None = None,
        capability_desc: str | None = None,
        capability_capacity: int | None = None,
        capability_price_per_unit: int | None = None,
        capability_price_scaling: int | None = None,
        max_retries: int = 3,
        delay: float = 2.0,
        timeout: float = 1.5,  # noqa: ASYNC109 (pytrickle's signature)
    ) -> ParseResult | bool:
        env = os.environ
        orch_url = orch_url or env.get("ORCH_URL", "")
        orch_secret = orch_secret or env.get("ORCH_SECRET", "")
        if not (orch_url and orch_secret):
            self.logger.info("no orchestrator URL or secret: capability not registered")
            return False
        body = {
            "url": env.get("CAPABILITY_URL", "http://localhost:8000"),
            "name": capability_name or env.get("CAPABILITY_NAME", "pytrickle-worker"),
            "description": capability_desc or env.get("CAPABILITY_DESCRIPTION", "PyTrickle video processing worker"),
            "capacity": capability_capacity or int(env.get("CAPABILITY_CAPACITY", 1)),
            "price_per_unit": capability_price_per_unit or int(env.get("CAPABILITY_PRICE_PER_UNIT", 0)),
            "price_scaling": capability_price_scaling or int(env.get("CAPABILITY_PRICE_SCALING", 1)),
        }
        return await self._post(orch_url.rstrip("/"), orch_secret, body, max_retries, delay, timeout)

    async def _post(
        self, orch_url: str, secret: str, body: dict[str, Any], attempts: int, delay: float, limit_s: float
    ) -> ParseResult | bool:
        self.logger.info("registering capability %s", body["name"])
        headers = {"Authorization": secret}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit_s)) as http:
            for attempt in range(1, attempts + 1):
                try:
                    async with http.post(
                        f"{orch_url}/capability/register",
                        json=body,
                        headers=headers,
                        ssl=False,
                        allow_redirects=False,  # the secret must not follow a redirect
                    ) as resp:
                        if resp.status == 200:
                            self.logger.info("capability %s registered", body["name"])
                            return urlparse(body["url"])
                        if resp.status == 400:
                            self.logger.error("orchestrator refused the registration: secret incorrect")
                            return False
                        self.logger.warning("register attempt %d: HTTP %d %s", attempt, resp.status, await resp.text())
                except (aiohttp.ClientError, TimeoutError) as exc:
                    self.logger.warning("register attempt %d failed: %r", attempt, exc)
                if attempt < attempts:
                    await asyncio.sleep(delay)
        self.logger.warning("capability not registered after %d attempts", attempts)
        return False

    @classmethod
    async def register(cls, logger: logging.Logger | None = None, **kwargs: Any) -> ParseResult | bool:
        """One-line form: ``await RegisterCapability.register(capability_name="x")``."""
        return await cls(logger).register_capability(**kwargs)


__all__ = ["RegisterCapability"]
