"""BYOC live streams on the test orchestrator: start, update and stop a stream on a registered worker, and the
orchestrator's own end of a stream (its monitor, and the silent ``RemoveStream``).

Upstream, function by function (go-livepeer ``byoc/stream_orchestrator.go`` unless named otherwise):
- ``POST /ai/stream/start``: ``StartStream``; ``POST /ai/stream/update``: ``UpdateStream``; ``POST
  /ai/stream/stop``: ``StopStream``. Each reads the ``Livepeer`` job header with ``setupOrchJob``
  (``byoc/job_orchestrator.go``, here ``jobs.py``). Off-chain the job price is 0/1, so no payment is checked or
  debited and ``Livepeer-Balance`` is always 0.
- towards the worker: ``createWorkerReq`` (``X-Stream-Id`` when set, ``Bearer`` when a token is registered),
  ``processWorkerResp`` (a 401 removes the capability and becomes a 500), ``sendReqWithTimeout``
  (``byoc/utils.go``: the job's ``timeout_seconds``).
- ``monitorOrchStream``: frees the capacity when the stream ends; every 23 s it checks that its capability is
  still registered and quits when it is not (the capacity is then never freed). Its other per-tick branches (a
  stream gone from the table gets a nil-body ``/stream/stop``; an inactive one is removed) cannot be reached:
  ``RemoveStream`` always cancels the stream first, which wakes the monitor on its ``Done`` case, and the control
  channel pointer ``IsActive`` looks at is never cleared.
- ``RemoveStream`` (``core/external_capabilities.go``): the stream leaves the table and its channels are closed
  (``StreamInfo.cleanup``, run by ``AddStream``'s watcher); the worker is not called. Upstream does this on an
  insufficient balance; here the test-only ``POST /_test/byoc/stream/remove`` does it.
- test-only ``POST /_test/byoc/stream/start|stop|params``: unsigned stand-ins for the three routes, for tests that
  play the gateway by hand. They build the job a gateway would send and go through the same code.

Errors are Go's ``http.Error``: plain text and a newline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from .capabilities import CapabilityTable
from .channels import TrickleChannels
from .jobs import (
    NO_CAPACITY,
    JobError,
    JobRequest,
    JobRequestDetails,
    parse_details,
    parse_job_request,
    parse_parameters,
)

log = logging.getLogger(__name__)

JOB_HEADER = "Livepeer"  # byoc/types.go jobRequestHdr
BALANCE_HEADER = "Livepeer-Balance"  # jobPaymentBalanceHdr
STREAM_ID_HEADER = "X-Stream-Id"
MONITOR_INTERVAL = 23.0  # monitorOrchStream pmtCheckDur: "slightly faster than gateway"
GATEWAY_STOP_TIMEOUT = 10  # byoc/stream_gateway.go sendStopStreamToOrch: the stop job's timeout_seconds
OFFCHAIN_BALANCE = "0"  # getPaymentBalance(...).FloatString(0) with no balances


def http_error(message: str, status: int, headers: dict[str, str] | None = None) -> web.Response:
    """Go's ``http.Error``: text/plain body with a newline (headers set before it are kept)."""
    return web.Response(status=status, text=message + "\n", content_type="text/plain", headers=headers)


def passthrough(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    """``w.WriteHeader(status); w.Write(body)``: Go sniffs the type; a JSON or text body sniffs as text/plain."""
    out = dict(headers or {})
    if body:
        out["Content-Type"] = "text/plain; charset=utf-8"
    return web.Response(status=status, body=body, headers=out)


def json_object(body: bytes) -> dict[str, Any] | None:
    """``json.Unmarshal`` into a map: an object, ``null`` (an empty map), else None (an error)."""
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if value is None:
        return {}
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class ChannelPlan:
    """One channel ``StartStream`` may create: its name suffix, mime type, start-body key and reply header."""

    suffix: str
    mime_type: str
    body_key: str
    reply_header: str


CONTROL = ChannelPlan("-control", "application/json", "control_url", "X-Control-Url")
EVENTS = ChannelPlan("-events", "application/json", "events_url", "X-Events-Url")
INPUT = ChannelPlan("", "video/MP2T", "subscribe_url", "X-Publish-Url")  # the worker reads it, the gateway writes
OUTPUT = ChannelPlan("-out", "video/MP2T", "publish_url", "X-Subscribe-Url")  # the worker writes, the gateway reads
DATA = ChannelPlan("-data", "application/jsonl", "data_url", "X-Data-Url")


@dataclass(frozen=True)
class WorkerReply:
    status: int
    body: bytes


@dataclass
class ByocStream:
    """``core.StreamInfo``: a stream the orchestrator started on a worker."""

    stream_id: str
    capability: str
    channels: list[str]
    request: dict[str, Any]  # the body the worker got
    started_at: float = field(default_factory=time.time)
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # StreamCtx, cancelled by RemoveStream
    monitor: asyncio.Task[None] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "stream_id": self.stream_id,
            "capability": self.capability,
            "channels": self.channels,
            "request": self.request,
            "started_at": self.started_at,
        }


class StreamRoutes:
    def __init__(
        self,
        table: CapabilityTable,
        http: aiohttp.ClientSession,
        trickle: TrickleChannels | None,
        monitor_interval: float = MONITOR_INTERVAL,
    ) -> None:
        self.table = table
        self.http = http
        self.trickle = trickle
        self.monitor_interval = monitor_interval
        self.streams: dict[str, ByocStream] = {}

    def add_routes(self, app: web.Application) -> None:
        # byoc/byoc.go registerRoutes: no method in the patterns, so any method is served.
        app.router.add_route("*", "/ai/stream/start", self.start)
        app.router.add_route("*", "/ai/stream/update", self.update)
        app.router.add_route("*", "/ai/stream/stop", self.stop)
        app.router.add_post("/_test/byoc/stream/start", self.test_start)
        app.router.add_post("/_test/byoc/stream/stop", self.test_stop)
        app.router.add_post("/_test/byoc/stream/params", self.test_params)
        app.router.add_post("/_test/byoc/stream/remove", self.test_remove)

    # -- the signed routes -------------------------------------------------------------------------------

    def _setup_job(self, request: web.Request, reserve: bool) -> tuple[JobRequest, JobRequestDetails]:
        """``setupOrchJob``: parse and verify the header, reserve capacity (start only), parse ``request``.

        A bad ``request`` string fails after the reservation, which upstream then never frees.
        """
        job = parse_job_request(request.headers.get(JOB_HEADER, ""))
        if reserve and self.table.reserve(job.capability) is None:
            raise JobError(NO_CAPACITY)  # errZeroCapacity -> errNoCapabilityCapacity
        return job, parse_details(job)

    async def start(self, request: web.Request) -> web.StreamResponse:
        try:
            job, _ = self._setup_job(request, reserve=True)
        except JobError as exc:
            return http_error(str(exc), 400)
        return await self._start(job, await request.read(), request.headers.get("Content-Type"))

    async def update(self, request: web.Request) -> web.StreamResponse:
        try:
            job, details = self._setup_job(request, reserve=False)
        except JobError as exc:
            return http_error(f"Failed to stop stream, request not valid err={exc}", 400)  # sic, upstream's text
        return await self._update(job.capability, details.stream_id, await request.read(), job.timeout_seconds)

    async def stop(self, request: web.Request) -> web.StreamResponse:
        try:
            job, details = self._setup_job(request, reserve=False)
        except JobError as exc:
            return http_error(f"Failed to stop stream, request not valid err={exc}", 400)
        return await self._stop(job.capability, details.stream_id, await request.read(), job.timeout_seconds)

    # -- what they do ------------------------------------------------------------------------------------

    async def _start(self, job: JobRequest, body: bytes, content_type: str | None) -> web.StreamResponse:
        """``StartStream`` after ``setupOrchJob`` reserved the capacity."""
        try:
            params = parse_parameters(job)
        except JobError as exc:
            return http_error(str(exc), 400)  # returned before the cleanup is armed: the reservation stays
        if self.trickle is None:
            self.table.free(job.capability)
            return http_error("no trickle server configured on the test orchestrator", 500)
        stream_id = job.id  # the request id is the manifest id and every channel's name
        plan = [
            (CONTROL, True),
            (EVENTS, True),
            (INPUT, params.enable_video_ingress),
            (OUTPUT, params.enable_video_egress),
            (DATA, params.enable_data_output),
        ]
        created: list[str] = []
        worker_body: dict[str, Any] = {"gateway_request_id": stream_id}
        headers: dict[str, str] = {}
        started = False
        try:  # "reset trickle channels and release capacity on failure"
            for channel, enabled in plan:
                if enabled:
                    url = await self.trickle.create(stream_id + channel.suffix, channel.mime_type)
                    created.append(stream_id + channel.suffix)
                    worker_body[channel.body_key] = url
                    headers[channel.reply_header] = url
            incoming = json_object(body)
            if incoming is None:
                return http_error("Invalid JSON body", 400, headers)
            worker_body.update(incoming)  # the caller's keys win
            worker_headers = self._worker_headers(job.capability, stream_id)
            if content_type:
                worker_headers["Content-Type"] = content_type  # copied from the incoming request
            url = self.table.url(job.capability) + "/stream/start"
            try:
                reply = await self._call_worker(
                    job.capability, url, json.dumps(worker_body).encode(), worker_headers, job.timeout_seconds
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("error sending stream start to worker %s: %r", url, exc)
                return http_error("Error sending request to worker", 500, headers)
            headers[BALANCE_HEADER] = OFFCHAIN_BALANCE
            if reply.status > 399:
                return passthrough(reply.status, reply.body, headers)
            if stream_id in self.streams:  # AddStream: "stream already exists"
                return http_error("Error adding stream to external capabilities", 500, headers)
            stream = ByocStream(stream_id, job.capability, created, worker_body)
            stream.monitor = asyncio.create_task(self._monitor(stream), name=f"monitor {stream_id}")
            self.streams[stream_id] = stream
            started = True
            log.info("stream %s started on capability %s", stream_id, job.capability)
            return web.Response(status=200, headers=headers)  # empty: the URLs are in the headers
        finally:
            if not started:
                self.table.free(job.capability)
                await self._close_channels(created)

    async def _update(self, capability: str, stream_id: str, body: bytes, limit_s: float) -> web.StreamResponse:
        """``UpdateStream``: the body goes to the worker's ``/stream/params`` as it is."""
        url = self.table.url(capability)
        if not url:  # GetUrlForCapability gives "": a request without a host fails before it is sent
            return http_error("Error sending request to worker", 500)
        headers = self._worker_headers(capability, stream_id)
        headers["Content-Type"] = "application/json"
        try:
            reply = await self._call_worker(capability, url + "/stream/params", body, headers, limit_s)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("error sending stream params to worker %s: %r", url, exc)
            return http_error("Error sending request to worker", 500)
        return passthrough(reply.status, reply.body)

    async def _stop(self, capability: str, stream_id: str, body: bytes, limit_s: float) -> web.StreamResponse:
        """``StopStream``: forward to the worker, then ``RemoveStream`` whatever the worker said."""
        reply = WorkerReply(200, b"")  # upstream's answer when the worker cannot be reached
        url = self.table.url(capability)
        if url:  # "" (capability gone): the request fails before it is sent, as upstream
            try:
                reply = await self._call_worker(
                    capability, url + "/stream/stop", body, self._worker_headers(capability, stream_id), limit_s
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("error sending stream stop to worker %s: %r", url, exc)
        await self.remove_stream(stream_id)
        return passthrough(reply.status, reply.body)

    def _worker_headers(self, capability: str, stream_id: str) -> dict[str, str]:
        """``createWorkerReq``: X-Stream-Id for a reverse proxy in front of workers, Bearer when registered."""
        headers = {STREAM_ID_HEADER: stream_id} if stream_id else {}
        cap = self.table.capabilities.get(capability)
        if cap is not None and cap.token:
            headers["Authorization"] = "Bearer " + cap.token
        return headers

    async def _call_worker(
        self, capability: str, url: str, body: bytes, headers: dict[str, str], seconds: float
    ) -> WorkerReply:
        """POST with the job's timeout; ``processWorkerResp``: a 401 drops the capability and becomes a 500."""
        async with self.http.post(
            url,
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=seconds),
            skip_auto_headers=("Content-Type",),  # Go sends none unless one is set
        ) as resp:
            reply = WorkerReply(resp.status, await resp.read())
        if reply.status == 401:
            log.warning("worker answered 401: removing capability %s", capability)
            self.table.drop(capability, "worker answered 401")
            return WorkerReply(500, b"Orchestrator worker failure")
        return reply

    async def _close_channels(self, names: list[str]) -> None:
        if self.trickle is not None:
            await asyncio.gather(*(self.trickle.delete(n) for n in names))

    # -- the orchestrator's own end of a stream ----------------------------------------------------------

    async def _monitor(self, stream: ByocStream) -> None:
        """``monitorOrchStream`` off-chain: the price is 0, so nothing is debited and no balance runs out."""
        while True:
            try:
                async with asyncio.timeout(self.monitor_interval):
                    await stream.ended.wait()
            except TimeoutError:
                if stream.capability not in self.table.capabilities:
                    log.info("capability %s gone: monitor of stream %s quits", stream.capability, stream.stream_id)
                    return
                continue
            self.table.free(stream.capability)  # "Stream ended, stopping payment monitoring and released capacity"
            return

    async def remove_stream(self, stream_id: str) -> bool:
        """``RemoveStream``: cancel the stream. Upstream two goroutines wake on it at once, the monitor (frees the
        capacity) and ``AddStream``'s watcher (closes the channels); here both are done before this returns."""
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return False
        stream.ended.set()
        await self._close_channels(stream.channels)
        if stream.monitor is not None:
            await stream.monitor
        log.info("stream %s removed", stream_id)
        return True

    async def close(self) -> None:
        for stream_id in list(self.streams):
            await self.remove_stream(stream_id)

    # -- test-only entry points --------------------------------------------------------------------------

    @staticmethod
    async def _test_request(request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"invalid test request: {exc}\n") from exc
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="invalid test request: body must be a JSON object\n")
        return body

    def _capability_of(self, body: dict[str, Any]) -> tuple[str, str]:
        stream_id = str(body.get("stream_id", ""))
        stream = self.streams.get(stream_id)
        return stream_id, str(body.get("capability") or (stream.capability if stream else ""))

    async def test_start(self, request: web.Request) -> web.StreamResponse:
        """The start a gateway sends, unsigned.

        Body: ``capability`` (required), ``stream_id`` (default: random), ``params`` (object), ``body`` (the
        gateway's JSON body; default ``{"params": params}`` as ``byoc/stream_gateway.go`` sends),
        ``enable_video_ingress``/``enable_video_egress`` (default true), ``enable_data_output`` (default false),
        ``timeout_seconds`` (default 30). The answer is ``/ai/stream/start``'s.
        """
        body = await self._test_request(request)
        stream_id = str(body.get("stream_id") or "stream-" + secrets.token_hex(4))
        flags = {
            "enable_video_ingress": bool(body.get("enable_video_ingress", True)),
            "enable_video_egress": bool(body.get("enable_video_egress", True)),
            "enable_data_output": bool(body.get("enable_data_output", False)),
        }
        job = JobRequest(
            id=stream_id,
            request=json.dumps({"stream_id": stream_id}),
            parameters=json.dumps(flags),
            capability=str(body.get("capability", "")),
            timeout_seconds=round(float(body.get("timeout_seconds", 30))),
        )
        if self.table.reserve(job.capability) is None:
            return http_error(NO_CAPACITY, 400)
        gateway_body = body.get("body", {"params": body.get("params", {})})
        return await self._start(job, json.dumps(gateway_body).encode(), "application/json")

    async def test_stop(self, request: web.Request) -> web.StreamResponse:
        """The stop a gateway sends (its 10 s job timeout), unsigned.

        Body: ``stream_id``, optional ``capability`` (default: the stream's), optional ``body`` (raw text, or JSON,
        sent on to the worker).
        """
        body = await self._test_request(request)
        stream_id, capability = self._capability_of(body)
        raw = body.get("body")
        data = raw.encode() if isinstance(raw, str) else (json.dumps(raw).encode() if raw is not None else b"")
        return await self._stop(capability, stream_id, data, GATEWAY_STOP_TIMEOUT)

    async def test_params(self, request: web.Request) -> web.StreamResponse:
        """The update a gateway sends, unsigned. Body: ``stream_id``, ``params`` (object), optional ``capability``,
        optional ``timeout_seconds`` (default 30)."""
        body = await self._test_request(request)
        stream_id, capability = self._capability_of(body)
        data = json.dumps(body.get("params", {})).encode()
        return await self._update(capability, stream_id, data, float(body.get("timeout_seconds", 30)))

    async def test_remove(self, request: web.Request) -> web.Response:
        """``RemoveStream`` alone (upstream: an insufficient balance): channels closed, the worker not called.
        Body: ``stream_id``. Answers ``{"removed": bool}``."""
        stream_id = (await self._test_request(request)).get("stream_id")
        if not isinstance(stream_id, str):
            raise web.HTTPBadRequest(text="invalid test request: stream_id is required\n")
        return web.json_response({"removed": await self.remove_stream(stream_id)})
