"""The runner's session callbacks to the orchestrator (``CreateLiveRunnerTrickleChannel``,
``StopLiveRunnerSessionInternal`` in go-livepeer ``server/ai_http.go``), authorised by the session token.

Errors never carry the token or the channel URLs (both are credentials): only status codes and the
orchestrator's own message.
"""

from __future__ import annotations

import logging

import aiohttp

from .protocol import (
    CHANNELS_CALLBACK,
    LIVE_VIDEO_CHANNELS,
    STOP_CALLBACK,
    Channel,
    ChannelSpec,
    SessionContext,
    channels_request,
    parse_channels_reply,
)

log = logging.getLogger(__name__)


class CallbackError(Exception):
    """A session callback failed; ``status`` is the orchestrator's HTTP status, 0 when it was not reached."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def describe(exc: BaseException) -> str:
    """An exception for logs and replies. Connection errors name only host and port; others just their type,
    since aiohttp's response errors can carry request URLs and headers."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port}"
    return type(exc).__name__


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


async def stop_session(http: aiohttp.ClientSession, context: SessionContext, timeout_s: float = 10.0) -> bool:
    """``POST {Session-Control}/stop``: release the session (and its channels) at the orchestrator.

    True when released; a 404 (the orchestrator already dropped it) counts as released.
    """
    try:
        async with http.post(
            context.callback_url(STOP_CALLBACK),
            headers=context.auth_headers(),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as resp:
            if resp.status in (200, 204, 404):
                return True
            reason = await _reason(resp)
            log.warning("session %s: stop callback answered %d: %s", context.session_id, resp.status, reason)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("session %s: stop callback failed: %s", context.session_id, describe(exc))
    return False
