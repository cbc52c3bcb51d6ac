"""BYOC routes of the test orchestrator: capability registry, job token, and stream routing to workers.

Upstream files, function by function:
- ``POST /capability/register``, ``POST /capability/unregister``: go-livepeer ``byoc/job_orchestrator.go``
  ``RegisterCapability`` / ``UnregisterCapability``; the table semantics are in ``capabilities.py``.
- ``GET /process/token``: ``byoc/job_orchestrator.go`` ``GetJobToken``, the capacity read gateways do
  (``byoc/job_gateway.go`` ``getJobOrchestrators``) before picking an orchestrator.
- ``POST /_test/byoc/stream/start|stop|params``: test-only entry points standing in for a gateway's signed
  ``/ai/stream/start|stop|update`` (the signature and payment checks of ``setupOrchJob`` are skipped); what
  they do towards the worker follows ``byoc/stream_orchestrator.go`` ``StartStream``, ``StopStream``,
  ``UpdateStream``, ``createWorkerReq`` and ``processWorkerResp``.
- ``GET /_test/capabilities``: test-only view of the table, its history and the running streams.

Upstream answers errors with ``http.Error``: plain text and a trailing newline; so do these routes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from .capabilities import CapabilityTable, RegistrationError, UnsupportedCurrency
from .channels import TrickleChannels

log = logging.getLogger(__name__)

# byoc/types.go header names
ETH_ADDRESS_HEADER = "Livepeer-Eth-Address"
CAPABILITY_HEADER = "Livepeer-Capability"
STREAM_ID_HEADER = "X-Stream-Id"
NO_CAPABILITY_MESSAGE = (
    "Job capabilities not provided, must provide comma separated capabilities in Livepeer-Capability header"
)


def http_error(message: str, status: int) -> web.Response:
    """Go's ``http.Error``: text/plain body with a newline."""
    return web.Response(status=status, text=message + "\n", content_type="text/plain")


@dataclass
class ByocStream:
    """``core.StreamInfo``: a stream the orchestrator started on a worker."""

    stream_id: str
    capability: str
    channels: list[str]
    request: dict[str, Any]
    started_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "stream_id": self.stream_id,
            "capability": self.capability,
            "channels": self.channels,
            "request": self.request,
            "started_at": self.started_at,
        }


class ByocRoutes:
    def __init__(
        self,
        secret: str,
        http: aiohttp.ClientSession,
        trickle: TrickleChannels | None,
        service_url: Callable[[], str],
    ) -> None:
        self.secret = secret
        self.http = http
        self.trickle = trickle
        self.service_url = service_url
        self.table = CapabilityTable()
        self.streams: dict[str, ByocStream] = {}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/capability/register", self.register)
        app.router.add_route("*", "/capability/unregister", self.unregister)
        app.router.add_route("*", "/process/token", self.job_token)
        app.router.add_get("/_test/capabilities", self.test_capabilities)
        app.router.add_post("/_test/byoc/stream/start", self.test_stream_start)
        app.router.add_post("/_test/byoc/stream/stop", self.test_stream_stop)
        app.router.add_post("/_test/byoc/stream/params", self.test_stream_params)

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
            sender = json.loads(base64.b64decode(sender_header, validate=True))
            if not isinstance(sender, dict):
                raise ValueError("not an object")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return http_error("Invalid eth address header ", 400)
        # The signature over the address is not verified here (no Ethereum keys in tests).
        capability = request.headers.get(CAPABILITY_HEADER, "")
        if not capability:
            return http_error(NO_CAPABILITY_MESSAGE, 400)
        cap = self.table.capabilities.get(capability)
        token: dict[str, Any] = {
            "sender_address": {"addr": sender.get("addr", ""), "sig": sender.get("sig", "")},
            "service_addr": self.service_url(),
        }
        # net.PriceInfo json tags (protobuf, omitempty). Offchain upstream answers 0/1; the registered price is
        # more useful to tests, as an on-chain orchestrator would derive it from the registration.
        price = (
            {"pricePerUnit": cap.price_per_unit, "pixelsPerUnit": cap.price_scaling} if cap else {"pixelsPerUnit": 1}
        )
        token["price"] = {k: v for k, v in price.items() if v}
        available = self.table.available(capability)
        if available:  # `available_capacity,omitempty`: 0 is left out
            token["available_capacity"] = available
        return web.json_response(token)

    async def test_capabilities(self, request: web.Request) -> web.Response:
        data = self.table.to_json()
        data["streams"] = {sid: s.to_json() for sid, s in self.streams.items()}
        return web.json_response(data)

    # -- streams -----------------------------------------------------------------------------------------

    def _worker_headers(self, capability: str, stream_id: str) -> dict[str, str]:
        """``createWorkerReq``: X-Stream-Id for a reverse proxy in front of workers, Bearer when registered."""
        headers = {STREAM_ID_HEADER: stream_id} if stream_id else {}
        cap = self.table.capabilities.get(capability)
        if cap is not None and cap.token:
            headers["Authorization"] = "Bearer " + cap.token
        return headers

    async def _call_worker(
        self, capability: str, url: str, body: bytes | None, headers: dict[str, str], seconds: float
    ) -> tuple[int, bytes, str]:
        """POST to the worker; ``processWorkerResp``: a 401 drops the capability and becomes a 500."""
        async with self.http.post(
            url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=seconds)
        ) as resp:
            status, payload, ctype = resp.status, await resp.read(), resp.headers.get("Content-Type", "")
        if status == 401:
            log.warning("worker answered 401: removing capability %s", capability)
            self.table.drop(capability, "worker answered 401")
            return 500, b"Orchestrator worker failure", "text/plain"
        return status, payload, ctype

    async def _close_channels(self, names: list[str]) -> None:
        if self.trickle is not None:
            await asyncio.gather(*(self.trickle.delete(n) for n in names))

    async def test_stream_start(self, request: web.Request) -> web.StreamResponse:
        """Start a stream on a capability as ``StartStream`` does after a gateway's signed request.

        Body: ``capability`` (required), ``stream_id`` (default: random), ``params`` (object), ``body`` (the
        gateway's JSON body; default ``{"params": params}`` as ``byoc/stream_gateway.go`` sends),
        ``enable_video_ingress``/``enable_video_egress`` (default true), ``enable_data_output`` (default false),
        ``timeout_seconds`` (default 30). Answers the worker's status and body, with the channel URLs in the
        ``X-*-Url`` headers as upstream.
        """
        job = await self._test_request(request)
        capability = str(job.get("capability", ""))
        stream_id = str(job.get("stream_id") or "stream-" + secrets.token_hex(4))
        timeout = float(job.get("timeout_seconds", 30))
        gateway_body = job.get("body", {"params": job.get("params", {})})
        if self.table.reserve(capability) is None:
            # verifyJobCreds: reserving an unknown capability fails; StartStream maps it to 400.
            return http_error("No capacity available for capability", 400)
        if self.trickle is None:
            self.table.free(capability)
            return http_error("no trickle server configured on the test orchestrator", 500)
        url = self.table.capabilities[capability].url + "/stream/start"

        created: list[str] = []
        worker_body: dict[str, Any] = {"gateway_request_id": stream_id}
        reply_headers: dict[str, str] = {}
        # (suffix, mime, body field, reply header, enabled): StartStream's required then optional channels.
        plan = [
            ("-control", "application/json", "control_url", "X-Control-Url", True),
            ("-events", "application/json", "events_url", "X-Events-Url", True),
            ("", "video/MP2T", "subscribe_url", "X-Publish-Url", job.get("enable_video_ingress", True)),
            ("-out", "video/MP2T", "publish_url", "X-Subscribe-Url", job.get("enable_video_egress", True)),
            ("-data", "application/jsonl", "data_url", "X-Data-Url", job.get("enable_data_output", False)),
        ]
        failed = True
        try:
            for suffix, mime, body_field, header, enabled in plan:
                if not enabled:
                    continue
                name = stream_id + suffix
                channel = await self.trickle.create(name, mime)
                created.append(name)
                worker_body[body_field] = channel
                reply_headers[header] = channel
            if not isinstance(gateway_body, dict):
                return http_error("Invalid JSON body", 400)
            worker_body.update(gateway_body)  # the gateway's fields win, as upstream's merge order
            headers = self._worker_headers(capability, stream_id)
            headers["Content-Type"] = "application/json"
            try:
                status, payload, ctype = await self._call_worker(
                    capability, url, json.dumps(worker_body).encode(), headers, timeout
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("error sending stream start to worker %s: %r", url, exc)
                return http_error("Error sending request to worker", 500)
            if status > 399:
                return web.Response(status=status, body=payload, headers={"Content-Type": ctype or "text/plain"})
            if stream_id in self.streams:
                return http_error("Error adding stream to external capabilities", 500)
            self.streams[stream_id] = ByocStream(stream_id, capability, created, worker_body)
            failed = False
            return web.Response(
                status=200, body=payload, headers={**reply_headers, "Content-Type": ctype or "text/plain"}
            )
        finally:
            if failed:  # "reset trickle channels and release capacity on failure"
                self.table.free(capability)
                await self._close_channels(created)

    async def _end_stream(self, stream_id: str) -> None:
        """``RemoveStream``: the stream's monitor then frees capacity and closes its channels."""
        stream = self.streams.pop(stream_id, None)
        if stream is not None:
            self.table.free(stream.capability)
            await self._close_channels(stream.channels)

    @staticmethod
    async def _test_request(request: web.Request) -> dict[str, Any]:
        try:
            job = await request.json()
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"invalid test request: {exc}\n") from exc
        if not isinstance(job, dict):
            raise web.HTTPBadRequest(text="invalid test request: body must be a JSON object\n")
        return job

    def _stream_capability(self, job: dict[str, Any]) -> tuple[str, str]:
        stream_id = str(job.get("stream_id", ""))
        stream = self.streams.get(stream_id)
        return stream_id, str(job.get("capability") or (stream.capability if stream else ""))

    async def test_stream_stop(self, request: web.Request) -> web.StreamResponse:
        """``StopStream``: forward to the worker, then remove the stream whatever the worker said.

        Body: ``stream_id``, optional ``capability`` (default: the stream's), optional ``body`` (raw text sent on).
        """
        job = await self._test_request(request)
        stream_id, capability = self._stream_capability(job)
        cap = self.table.capabilities.get(capability)
        status, payload, ctype = 200, b"", "text/plain"  # upstream default when the worker cannot be reached
        if cap is not None:
            raw = job.get("body")
            body = raw.encode() if isinstance(raw, str) else (json.dumps(raw).encode() if raw is not None else None)
            try:
                status, payload, ctype = await self._call_worker(
                    capability, cap.url + "/stream/stop", body, self._worker_headers(capability, stream_id), 30
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("error sending stream stop to worker %s: %r", cap.url, exc)
        await self._end_stream(stream_id)
        return web.Response(status=status, body=payload, headers={"Content-Type": ctype or "text/plain"})

    async def test_stream_params(self, request: web.Request) -> web.StreamResponse:
        """``UpdateStream``: the new params go to the worker's ``/stream/params`` as is.

        Body: ``stream_id``, ``params`` (object), optional ``capability``.
        """
        job = await self._test_request(request)
        stream_id, capability = self._stream_capability(job)
        cap = self.table.capabilities.get(capability)
        if cap is None:
            return http_error("Error sending request to worker", 500)
        headers = self._worker_headers(capability, stream_id)
        headers["Content-Type"] = "application/json"
        try:
            status, payload, ctype = await self._call_worker(
                capability, cap.url + "/stream/params", json.dumps(job.get("params", {})).encode(), headers, 30
            )
        except (aiohttp.ClientError, TimeoutError):
            return http_error("Error sending request to worker", 500)
        return web.Response(status=status, body=payload, headers={"Content-Type": ctype or "text/plain"})

    async def close(self) -> None:
        for stream_id in list(self.streams):
            await self._end_stream(stream_id)
