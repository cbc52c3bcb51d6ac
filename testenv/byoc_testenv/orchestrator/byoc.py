"""BYOC routes of the test orchestrator: capability registry and job token (streams: ``streams.py``).

Upstream files, function by function:
- ``POST /capability/register``, ``POST /capability/unregister``: go-livepeer ``byoc/job_orchestrator.go``
  ``RegisterCapability`` / ``UnregisterCapability``; the table semantics are in ``capabilities.py``.
- ``GET /process/token``: ``byoc/job_orchestrator.go`` ``GetJobToken``, the capacity read gateways do
  (``byoc/job_gateway.go`` ``getJobOrchestrators``) before picking an orchestrator. Off-chain the price is
  ``core/ai_orchestrator.go`` ``JobPriceInfo``'s 0/1, whatever was registered.
- ``POST /ai/stream/start|update|stop`` and their test-only stand-ins: ``streams.py``.
- ``GET /_test/capabilities``: test-only view of the table, its history and the running streams.

Upstream answers errors with ``http.Error``: plain text and a trailing newline; so do these routes.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from .capabilities import CapabilityTable, RegistrationError, UnsupportedCurrency
from .channels import TrickleChannels
from .jobs import parse_sender
from .streams import MONITOR_INTERVAL, StreamRoutes, http_error

log = logging.getLogger(__name__)

# byoc/types.go header names
ETH_ADDRESS_HEADER = "Livepeer-Eth-Address"
CAPABILITY_HEADER = "Livepeer-Capability"
NO_CAPABILITY_MESSAGE = (
    "Job capabilities not provided, must provide comma separated capabilities in Livepeer-Capability header"
)
OFFCHAIN_PRICE = {"pixelsPerUnit": 1}  # JobPriceInfo off-chain: 0/1; protobuf json omits the 0


class ByocRoutes:
    def __init__(
        self,
        secret: str,
        http: aiohttp.ClientSession,
        trickle: TrickleChannels | None,
        service_url: Callable[[], str],
        monitor_interval: float = MONITOR_INTERVAL,
    ) -> None:
        self.secret = secret
        self.service_url = service_url
        self.table = CapabilityTable()
        self.streams = StreamRoutes(self.table, http, trickle, monitor_interval)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/capability/register", self.register)
        app.router.add_route("*", "/capability/unregister", self.unregister)
        app.router.add_route("*", "/process/token", self.job_token)
        app.router.add_get("/_test/capabilities", self.test_capabilities)
        self.streams.add_routes(app)

    def _authorized(self, request: web.Request) -> bool:
        # Raw secret, no "Bearer" (compares with orch.TranscoderSecret()).
        return hmac.compare_digest(request.headers.get("Authorization", "").encode(), self.secret.encode())

    # -- registry ----------------------------------------------------------------------------------------

    async def register(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return http_error("Method not allowed", 405)
        if not self._authorized(request):
            return http_error("invalid authorization", 400)
        body = await request.read()
        try:
            cap = self.table.register(body)
        except RegistrationError as exc:
            return web.Response(
                status=400, text=f"Error registering capability: {exc}", content_type="application/json"
            )
        except UnsupportedCurrency as exc:
            # Upstream panics in RegisterCapability; net/http recovers and drops the connection unanswered.
            log.warning("capability register panics upstream: %s", exc)
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)  # never reaches the client
        log.info("registered capability %s url=%s capacity=%d", cap.name, cap.url, cap.capacity)
        return web.Response(status=200, text="ok", content_type="application/json")

    async def unregister(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return http_error("Method not allowed", 405)
        if not self._authorized(request):
            return http_error("invalid authorization", 400)
        name = (await request.read()).decode(errors="replace")  # the raw name, not JSON
        self.table.unregister(name)
        log.info("removed capability %s", name)
        return web.Response(status=200, text="ok", content_type="application/json")

    async def job_token(self, request: web.Request) -> web.StreamResponse:
        if request.method != "GET":
            return http_error("Method not allowed", 405)
        sender_header = request.headers.get(ETH_ADDRESS_HEADER, "")
        if not sender_header:
            return http_error("Must have eth address and signature on address in Livepeer-Eth-Address header", 400)
        try:
            sender = parse_sender(sender_header)  # verifyTokenCreds
        except ValueError:
            return http_error("Invalid eth address header ", 400)
        capability = request.headers.get(CAPABILITY_HEADER, "")
        if not capability:
            return http_error(NO_CAPABILITY_MESSAGE, 400)
        # JobToken json tags: ticket_params and balance (0) are omitted off-chain; LastNonce has no tag.
        token: dict[str, Any] = {
            "sender_address": {"addr": sender.addr, "sig": sender.sig},
            "price": OFFCHAIN_PRICE,
            "service_addr": self.service_url(),
        }
        available = self.table.available(capability)
        if available:  # `available_capacity,omitempty`: 0 is left out
            token["available_capacity"] = available
        token["LastNonce"] = 0
        return web.json_response(token)

    async def test_capabilities(self, request: web.Request) -> web.Response:
        data = self.table.to_json()
        data["streams"] = {sid: s.to_json() for sid, s in self.streams.streams.items()}
        return web.json_response(data)

    async def close(self) -> None:
        await self.streams.close()
