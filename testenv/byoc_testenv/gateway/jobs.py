"""What the gateway sends an orchestrator and reads back: the signed ``Livepeer`` job header, the
``Livepeer-Eth-Address`` sender header, ``GET /process/token`` and the POSTs to ``/ai/stream/*``.

Follows go-livepeer ``byoc/utils.go`` ``gatewayJob.sign``, ``byoc/job_gateway.go`` ``getJobSender``,
``getJobOrchestrators``, ``getToken`` and ``sendJobToOrch``, ``byoc/types.go`` ``JobRequest``/``JobToken``.

Signatures: upstream signs with the gateway's Ethereum key. An off-chain gateway has none and sends ``"0x"``,
which every orchestrator refuses (``go-livepeer-contracts.md`` section 5), so upstream cannot start a BYOC stream
off-chain. Here a stand-in 65-byte signature (the size of an Ethereum one) is sent instead: an off-chain
orchestrator only checks that it is hex.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

log = logging.getLogger(__name__)

SENDER = "0x" + "6a" * 20  # the gateway's address (a stand-in)
JOB_HEADER = "Livepeer"
ETH_ADDRESS_HEADER = "Livepeer-Eth-Address"
CAPABILITY_HEADER = "Livepeer-Capability"
JOB_TIMEOUT_MARGIN = 5  # sendJobToOrch: the job's timeout_seconds "+5 second buffer"


class OrchestratorError(RuntimeError):
    """An orchestrator could not be asked (connection, timeout, a non-200 token reply, a bad token)."""


def signature(message: bytes) -> str:
    """``"0x"`` and 65 bytes of hex, derived from the message (off-chain orchestrators accept any)."""
    return "0x" + (hashlib.sha512(message).digest() + b"\x1b").hex()


def _b64_json(data: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()


def sender_header() -> str:
    """``getJobSender``: base64 JSON ``{"addr", "sig"}``, the signature over the address."""
    return _b64_json({"addr": SENDER, "sig": signature(SENDER.encode())})


@dataclass(frozen=True)
class JobRequest:
    """``JobRequest`` before signing. ``request`` and ``parameters`` are JSON strings (the orchestrator parses
    them again); the signature covers their concatenation."""

    capability: str
    request: str
    parameters: str = ""
    id: str = ""
    timeout_seconds: int = 0
    search_timeout: float = 0.0  # OrchSearchTimeout (marshalled, unused by the orchestrator)
    response_timeout: float = 0.0  # OrchSearchRespTimeout

    def signed_header(self) -> str:
        """``gatewayJob.sign``: sender and signature set, then base64 of the whole struct as Go marshals it."""
        return _b64_json(
            {
                "id": self.id,
                "request": self.request,
                "parameters": self.parameters,
                "capability": self.capability,
                "capability_url": "",
                "sender": SENDER,
                "sig": signature((self.request + self.parameters).encode()),
                "timeout_seconds": self.timeout_seconds,
                "OrchSearchTimeout": round(self.search_timeout * 1e9),
                "OrchSearchRespTimeout": round(self.response_timeout * 1e9),
            }
        )


@dataclass(frozen=True)
class OrchestratorToken:
    """The parts of a ``JobToken`` the gateway uses (it then calls the orchestrator at ``service_addr``)."""

    service_addr: str
    available_capacity: int

    @classmethod
    def from_json(cls, url: str, data: Any) -> OrchestratorToken:
        if not isinstance(data, dict):
            raise OrchestratorError(f"token from {url} is not a JSON object")
        try:
            return cls(str(data.get("service_addr", "")), int(data.get("available_capacity", 0)))
        except (TypeError, ValueError) as exc:
            raise OrchestratorError(f"bad token from {url}: {exc}") from None


@dataclass(frozen=True)
class JobReply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


async def fetch_token(http: aiohttp.ClientSession, url: str, capability: str, limit_s: float) -> OrchestratorToken:
    """One ``GET /process/token`` (``getOrchJobToken``); ``OrchestratorError`` unless a 200 with a token."""
    headers = {ETH_ADDRESS_HEADER: sender_header(), CAPABILITY_HEADER: capability}
    try:
        async with http.get(
            url.rstrip("/") + "/process/token", headers=headers, timeout=aiohttp.ClientTimeout(total=limit_s)
        ) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise OrchestratorError(f"token from {url}: HTTP {resp.status}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise OrchestratorError(f"token from {url}: {exc!r}") from None
    try:
        return OrchestratorToken.from_json(url, json.loads(body))
    except ValueError as exc:
        raise OrchestratorError(f"token from {url}: {exc}") from None


async def get_token(http: aiohttp.ClientSession, url: str, capability: str, limit_s: float) -> OrchestratorToken:
    """``getToken``: up to 3 tries, each with the whole timeout; a pause of 100 ms, doubling, between tries
    while it fits before the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    backoff, attempt = 0.1, 1
    while True:
        try:
            return await fetch_token(http, url, capability, limit_s)
        except OrchestratorError as exc:
            log.info("getToken attempt %d: %s", attempt, exc)
            if attempt == 3 or loop.time() + backoff >= deadline:
                raise
        await asyncio.sleep(backoff)
        backoff, attempt = backoff * 2, attempt + 1


async def find_orchestrators(
    http: aiohttp.ClientSession,
    urls: Sequence[str],
    capability: str,
    search_timeout: float,
    response_timeout: float,
) -> list[OrchestratorToken]:
    """``getJobOrchestrators``: every orchestrator asked at once, in random order; those reporting
    ``available_capacity > 0``, in the order they answered, within ``search_timeout``."""
    tasks = [
        asyncio.create_task(fetch_token(http, url, capability, response_timeout))
        for url in random.sample(list(urls), len(urls))
    ]
    found: list[OrchestratorToken] = []
    try:
        for next_done in asyncio.as_completed(tasks, timeout=search_timeout):
            try:
                token = await next_done
            except OrchestratorError as exc:
                log.info("%s", exc)
                continue
            if token.available_capacity > 0:
                found.append(token)
    except TimeoutError:
        log.info("orchestrator search timed out after %.1f s with %d found", search_timeout, len(found))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return found


async def send_job(
    http: aiohttp.ClientSession, token: OrchestratorToken, route: str, job: JobRequest, body: bytes
) -> JobReply:
    """``sendJobToOrch``: POST ``service_addr + route`` with the signed header, JSON, within the job's timeout
    plus 5 s. Any status is a reply (the callers decide); ``OrchestratorError`` when none came."""
    headers = {JOB_HEADER: job.signed_header(), "Content-Type": "application/json"}
    limit = aiohttp.ClientTimeout(total=job.timeout_seconds + JOB_TIMEOUT_MARGIN)
    try:
        async with http.post(token.service_addr + route, data=body, headers=headers, timeout=limit) as resp:
            return JobReply(resp.status, resp.headers, await resp.read())
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise OrchestratorError(f"{route} at {token.service_addr}: {exc!r}") from None
