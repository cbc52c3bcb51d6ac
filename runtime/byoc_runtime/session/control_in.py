"""A session's control channel: params from the gateway, applied as they come.

Keepalives (``{"keep":"alive"}``) are skipped; a bad message is reported on the events channel and the stream
goes on. The channel ending (closed, or gone: 404) ends the stream: the orchestrator closes all of a stream's
channels together when it ends it without calling the worker (insufficient balance, its control monitor;
go-livepeer ``byoc/stream_orchestrator.go``, ``core/external_capabilities.go`` ``RemoveStream``), and a restarted
orchestrator has none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from byoc_edge.schema import MAX_JSON_DEPTH, nesting_depth
from pydantic import ValidationError

from .. import trickle
from .events_out import EventsOut
from .settings import OutputTooLarge

ApplyParams = Callable[[dict[str, Any], str], Awaitable[Any]]


async def follow_control(
    url: str,
    http: aiohttp.ClientSession,
    apply: ApplyParams,
    events: EventsOut,
    on_closed: Callable[[str], None],
) -> None:
    try:
        async with trickle.JsonSubscriber(url, session=http) as control:
            await _apply_messages(control, apply, events)
    except trickle.TrickleError as exc:
        # Unreachable rather than closed: report, keep streaming (the input or a stop still ends it).
        events.error(f"control channel lost: {exc}", "control")
        return
    on_closed("control channel closed by the orchestrator")


async def _apply_messages(messages: AsyncIterator[Any], apply: ApplyParams, events: EventsOut) -> None:
    async for message in messages:
        if trickle.is_keepalive(message) or not isinstance(message, dict):
            continue
        if nesting_depth(message) > MAX_JSON_DEPTH:
            events.error(f"control message nested deeper than {MAX_JSON_DEPTH} levels: ignored", "params")
            continue
        try:
            await apply(message, "control")
        except ValidationError as exc:
            events.error(f"invalid params on control channel: {_reasons(exc)}", "params")
        except OutputTooLarge as exc:
            events.error(f"invalid params on control channel: {exc}", "params")
        except Exception as exc:
            events.error(f"update_params failed: {exc!r}", "processor")


def _reasons(error: ValidationError) -> str:
    """What is wrong, by field, without the values given: a param value may be a secret (never echoed)."""
    parts = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
