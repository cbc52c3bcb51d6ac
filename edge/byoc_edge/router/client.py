"""HTTP to worker pods: polling their load and forwarding requests to them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from ..bearer import BearerToken
from .load import PodLoad, parse_health, parse_status

# Not copied between the orchestrator's request and the pod's (RFC 9110 hop-by-hop, plus recomputed ones).
HOP_HEADERS = frozenset(
    h.lower()
    for h in (
        "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "TE",
        "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length",
    )
)  # fmt: skip


class PodUnreachable(Exception):
    """No HTTP answer from the pod (refused, reset, timed out), or one that says it is not a worker for us.

    ``sent`` is False when the connection never opened, so the pod cannot have acted on the request.
    """

    def __init__(self, message: str, sent: bool = True, timed_out: bool = False) -> None:
        super().__init__(message)
        self.sent = sent
        self.timed_out = timed_out


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str

    def json(self) -> object:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


# The router fronts BYOC only: a caller's Live Runner session headers (Livepeer-Session-Control above all) would
# make the pod take the Live Runner path and call back a URL the caller chose. Nothing the BYOC orchestrator
# sends a worker starts with this prefix.
CALLER_ONLY_PREFIX = "livepeer-"


def end_to_end(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        k: v
        for k, v in headers.items()
        if k.lower() not in HOP_HEADERS and not k.lower().startswith(CALLER_ONLY_PREFIX)
    }


class PodClient:
    def __init__(self, http: aiohttp.ClientSession, token: BearerToken, status_timeout: float) -> None:
        self.http = http
        self.token = token  # the router's own polls; forwarded calls carry the caller's header
        self.status_timeout = status_timeout

    async def _get_json(self, url: str) -> tuple[int, object]:
        timeout = aiohttp.ClientTimeout(total=self.status_timeout)
        try:
            async with self.http.get(url, headers=self.token.header(), timeout=timeout, allow_redirects=False) as resp:
                body = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PodUnreachable(f"{url}: {exc!r}", sent=_sent(exc)) from exc
        try:
            return resp.status, json.loads(body)
        except ValueError:
            return resp.status, None

    async def poll(self, base: str) -> PodLoad:
        """The pod's load from ``/stream/status``; ``/health`` when that route is missing or failing."""
        status, data = await self._get_json(base + "/stream/status")
        if status == 401:
            raise PodUnreachable(f"{base}: 401 from /stream/status (the router's token is not the pod's)")
        if status == 200 and isinstance(data, dict):
            return parse_status(data)
        status, data = await self._get_json(base + "/health")
        if status != 200 or not isinstance(data, dict):
            raise PodUnreachable(f"{base}: /health answered {status}")
        return parse_health(data)

    async def forward(
        self, base: str, method: str, path: str, headers: Mapping[str, str], body: bytes | None, seconds: float
    ) -> Reply:
        """Send one request to the pod and read the whole answer (the worker API has no streaming replies)."""
        try:
            async with self.http.request(
                method,
                base + path,
                headers=end_to_end(headers),
                data=body if body else None,
                # A connect timeout of its own, so a timeout before sending is told from one after.
                timeout=aiohttp.ClientTimeout(total=seconds, sock_connect=min(seconds, self.status_timeout)),
                allow_redirects=False,
            ) as resp:
                return Reply(resp.status, await resp.read(), resp.headers.get("Content-Type", "application/json"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            sent = _sent(exc)
            raise PodUnreachable(f"{base}{path}: {exc!r}", sent, sent and isinstance(exc, TimeoutError)) from exc


def _sent(exc: BaseException) -> bool:
    return not isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
