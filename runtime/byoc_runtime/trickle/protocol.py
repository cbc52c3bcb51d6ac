"""Wire constants of the trickle protocol and small helpers shared by the clients.

Names and values follow go-livepeer ``trickle/trickle_server.go`` (headers, status 470, ring of 5)
and ``trickle/trickle_subscriber.go`` (``Next = -1``, ``Current = -2``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

SEQ_HEADER = "Lp-Trickle-Seq"  # seq of the segment a response is about
LATEST_HEADER = "Lp-Trickle-Latest"  # the server's next write seq (the live edge)
CLOSED_HEADER = "Lp-Trickle-Closed"  # "terminated" once the channel is closed
RESET_HEADER = "Lp-Trickle-Reset"  # publisher restart signal (go-livepeer only)

STATUS_OUT_OF_WINDOW = 470  # channel exists, seq is not in the ring: jump to LATEST_HEADER

SEQ_NEXT = -1  # GET: the next segment to be written; POST: the next seq
SEQ_CURRENT = -2  # GET: the segment in progress, from its start (recent go-livepeer only)

RING_SIZE = 5  # segments a server keeps for late subscribers

KEEPALIVE_MESSAGE = {"keep": "alive"}  # sent on control channels every 10 s


def segment_url(channel_url: str, seq: int) -> str:
    return f"{channel_url.rstrip('/')}/{seq}"


# Channel kinds go-livepeer names channels with (``{id}``, ``{id}-out``, ...; Live Runner ``{id}-in``): not secret.
_KINDS = ("out", "control", "events", "data", "in")


def channel_label(url: str) -> str:
    """How a trickle URL appears in logs and error texts. Channel URLs are credentials (go-livepeer
    ``doc/live-runner.md``: anyone holding one can read or write the stream), so the stream's name is replaced by
    a short digest; the host, the channel kind and the segment stay, which is what a reader of the log needs."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    seq = ""
    head, _, last = path.rpartition("/")
    if last.lstrip("-").isdigit():
        path, seq = head, f"/{last}"
    name = path.rpartition("/")[2]
    kind = next((k for k in _KINDS if name.endswith(f"-{k}")), "")
    digest = hashlib.sha256(path.encode()).hexdigest()[:8]
    return f"{parts.netloc}/…{'-' + kind if kind else ''}#{digest}{seq}"


def int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def is_closed(headers: Mapping[str, str]) -> bool:
    """Upstream clients treat any value of Lp-Trickle-Closed as end of stream."""
    return headers.get(CLOSED_HEADER) is not None


def is_transient_status(status: int) -> bool:
    return status >= 500 or status in (408, 429)


# Connection refused/reset, server went away, connect timeouts: worth retrying.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientConnectionError, asyncio.TimeoutError)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff: ``attempts`` tries in all, sleeping base*2^n (capped) between.

    The default gives up after about 7 s of consecutive failures.
    """

    attempts: int = 8
    base_delay: float = 0.1
    max_delay: float = 2.0

    def delay(self, failures: int) -> float:
        """Sleep before the next try, after ``failures`` (>= 1) consecutive failures."""
        return min(self.max_delay, self.base_delay * (2 ** max(failures - 1, 0)))

    def exhausted(self, failures: int) -> bool:
        return failures >= self.attempts


DEFAULT_RETRY = RetryPolicy()
