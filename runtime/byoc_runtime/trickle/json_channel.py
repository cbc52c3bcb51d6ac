"""JSON over trickle: one message per segment.

As in PyTrickle ``protocol.py`` / ai-runner: events (``application/json``) and control messages are
one JSON document per segment; the data channel (``application/jsonl``) carries JSON lines, one
line per segment (PyTrickle sends a batched list as ``json.dumps(items) + "\\n"``). The gateway
sends ``{"keep":"alive"}`` on control channels every 10 s: callers skip it with ``is_keepalive``.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from types import TracebackType
from typing import Any

import aiohttp

from .errors import SegmentError
from .protocol import KEEPALIVE_MESSAGE, SEQ_CURRENT, channel_label
from .publisher import Publisher
from .subscriber import Subscriber

log = logging.getLogger(__name__)

JSON = "application/json"
JSONL = "application/jsonl"
DEFAULT_MAX_MESSAGE = 1024 * 1024


def is_keepalive(msg: Any) -> bool:
    """True for the control channel's ``{"keep": "alive"}`` heartbeat."""
    return isinstance(msg, dict) and msg == KEEPALIVE_MESSAGE


def encode_message(obj: Any, mime_type: str = JSON) -> bytes:
    data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return data + b"\n" if mime_type == JSONL else data


def decode_segment(data: bytes, where: str = "") -> list[Any]:
    """Messages in one segment: the whole body as one document, else each line as one.

    Undecodable input is skipped with a warning, never raised.
    """
    try:
        text = data.decode()
    except UnicodeDecodeError:
        log.warning("trickle json %s: skipping a segment that is not UTF-8 (%d bytes)", where, len(data))
        return []
    if not text.strip():
        return []
    try:
        return [json.loads(text)]
    except RecursionError:
        log.warning("trickle json %s: skipping a segment nested too deeply (%d bytes)", where, len(data))
        return []
    except ValueError:
        pass
    out: list[Any] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except RecursionError:
            log.warning("trickle json %s: skipping a line nested too deeply", where)
        except ValueError:
            log.warning("trickle json %s: skipping garbage %r", where, line[:80])
    return out


class JsonPublisher:
    """``await send(obj)`` publishes obj as one segment. ``mime_type=JSONL`` for data channels."""

    def __init__(
        self, url: str, session: aiohttp.ClientSession | None = None, *, mime_type: str = JSON, **publisher_kw: Any
    ) -> None:
        self.mime_type = mime_type
        self.publisher = Publisher(url, mime_type, session, **publisher_kw)

    @property
    def url(self) -> str:
        return self.publisher.url

    async def send(self, obj: Any) -> None:
        """Publish one message; raises TrickleError (ChannelClosed when the channel is gone)."""
        await self.publisher.write_segment(encode_message(obj, self.mime_type))

    async def close(self, delete: bool = True) -> None:
        await self.publisher.close(delete=delete)

    async def __aenter__(self) -> JsonPublisher:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class JsonSubscriber:
    """``async for msg in JsonSubscriber(url)`` yields parsed messages in order.

    Garbage (bad JSON, not UTF-8, over ``max_message_bytes``, cut-off segments) is logged and
    skipped. Starts at -2 like PyTrickle's control subscriber, so the latest message sent before
    subscribing (the current params) is delivered. Ends like ``Subscriber``.
    """

    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession | None = None,
        *,
        start_seq: int = SEQ_CURRENT,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE,
        **subscriber_kw: Any,
    ) -> None:
        self.subscriber = Subscriber(url, session, start_seq=start_seq, **subscriber_kw)
        self._max = max_message_bytes
        self._ready: deque[Any] = deque()

    @property
    def url(self) -> str:
        return self.subscriber.url

    def __aiter__(self) -> JsonSubscriber:
        return self

    async def __anext__(self) -> Any:
        while not self._ready:
            segment = await self.subscriber.__anext__()
            try:
                data = await segment.read(max_bytes=self._max)
            except SegmentError as e:
                log.warning("trickle json %s: skipping segment %d: %s", channel_label(self.url), segment.seq, e)
                continue
            self._ready.extend(decode_segment(data, f"{channel_label(self.url)} seq {segment.seq}"))
        return self._ready.popleft()

    async def close(self) -> None:
        self._ready.clear()
        await self.subscriber.close()

    async def __aenter__(self) -> JsonSubscriber:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
