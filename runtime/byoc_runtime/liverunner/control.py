"""The runner's session callbacks to the orchestrator (``CreateLiveRunnerTrickleChannel``,
``StopLiveRunnerSessionInternal`` in go-livepeer ``server/ai_http.go``), authorised by the session token.

Errors never carry the token or the channel URLs (both are credentials): only status codes and the
orchestrator's own message.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from byoc_edge.liverunner import (
    CHANNELS_CALLBACK,
    LIVE_VIDEO_CHANNELS,
    STOP_CALLBACK,
    Channel,
    ChannelSpec,
    SessionContext,
    channels_request,
    parse_channels_reply,
)
from byoc_edge.rest import describe_client_error as describe

log = logging.getLogger(__name__)


class CallbackError(Exception):
    """A session callback failed; ``status`` is the orchestrator's HTTP status, 0 when it was not reached."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


async def _reason(resp: aiohttp.ClientResponse) -> str:
    text = (await resp.text(errors="replace")).strip()
    return text[:200] or resp.reason or ""


async def create_channels(
    http: aiohttp.ClientSession,
    context: SessionContext,
    specs: tuple[ChannelSpec, ...] = LIVE_VIDEO_CHANNELS,
    timeout_s: float = 10.0,
) -> dict[str, Channel]:
    """``POST {Session-Control}/channels``; existing names come back unchanged, so a retry is harmless."""
    try:
        async with http.post(
            context.callback_url(CHANNELS_CALLBACK),
            json=channels_request(specs),
            headers=context.auth_headers(),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
        ) as resp:
            if resp.status != 200:
                raise CallbackError(f"channel callback answered {resp.status}: {await _reason(resp)}", resp.status)
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise CallbackError(f"channel callback failed: {describe(exc)}") from None
    try:
        return parse_channels_reply(data, specs)
    except ValueError as exc:
        raise CallbackError(f"channel callback reply: {exc}", 200) from None


# The runner's stop callback checks the runner first: while it is not ready (its heartbeat says so, or is late)
# the orchestrator answers 404 "runner not found" and KEEPS the session (go-livepeer ai/runner/live_runner.go
# ValidSessionToken); only "runner session not found" means it is gone. A runner removed or expired has its
# sessions released with it, so retrying "runner not found" for a bounded time is safe either way.
SESSION_GONE = "runner session not found"
RELEASE_RETRY_SECONDS = 60.0


async def stop_session(
    http: aiohttp.ClientSession,
    context: SessionContext,
    timeout_s: float = 10.0,
    retry_for_s: float = RELEASE_RETRY_SECONDS,
    first_pause_s: float = 1.0,
) -> bool:
    """``POST {Session-Control}/stop``: release the session (and its channels) at the orchestrator.

    True when released, or already gone ("runner session not found"); retried with back-off for `retry_for_s`
    while the runner is not found (not ready), the orchestrator fails, or cannot be reached.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + retry_for_s
    pause = first_pause_s
    while True:
        try:
            async with http.post(
                context.callback_url(STOP_CALLBACK),
                headers=context.auth_headers(),
                timeout=aiohttp.ClientTimeout(total=timeout_s),
                allow_redirects=False,
            ) as resp:
                if resp.status in (200, 204):
                    return True
                reason = await _reason(resp)
                if resp.status == 404 and SESSION_GONE in reason:
                    return True
                log.warning("session %s: stop callback answered %d: %s", context.session_id, resp.status, reason)
                if resp.status not in (404, 429) and resp.status < 500:
                    return False  # refused for good (a wrong token): retrying changes nothing
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("session %s: stop callback failed: %s", context.session_id, describe(exc))
        if loop.time() + pause > deadline:
            return False
        await asyncio.sleep(pause)
        pause = min(pause * 2, 10.0)
