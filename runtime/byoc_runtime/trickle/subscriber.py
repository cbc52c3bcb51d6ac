"""Trickle subscriber: reads a channel segment by segment, each as a byte stream.

Behaviour follows go-livepeer ``trickle/trickle_subscriber.go`` (pre-connect the next GET as soon as
the current segment's headers arrive; re-issue a pre-connect that waits too long; 470 ->
Lp-Trickle-Latest; 404 / Lp-Trickle-Closed -> end) and PyTrickle ``subscriber.py`` (start at -2,
retries with a delay, GET ... ``Lp-Trickle-Seq`` + 1).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from types import TracebackType

import aiohttp

from ._aio import SOCK_READ_TIMEOUT_S, SessionHolder, cancel_and_wait, describe, request_timeout
from .errors import SegmentError, TrickleError
from .protocol import (
    DEFAULT_RETRY,
    LATEST_HEADER,
    SEQ_CURRENT,
    SEQ_HEADER,
    SEQ_NEXT,
    STATUS_OUT_OF_WINDOW,
    TRANSIENT_ERRORS,
    RetryPolicy,
    channel_label,
    int_header,
    is_closed,
    is_transient_status,
    segment_url,
)

log = logging.getLogger(__name__)

CHUNK_SIZE = 64 * 1024
DEFAULT_MAX_READ = 64 * 1024 * 1024
# Upstream re-creates a pre-connected GET that got no headers for this long (preconnectRefreshTimeout).
PRECONNECT_REFRESH_S = 20.0


class Segment:
    """One segment: ``seq`` and its bytes, streamed as they arrive from the server.

    The body can be consumed once, with ``iter_chunks()`` or ``read()``. The subscriber closes a
    segment when the next one is requested; ``close()`` (or ``async with segment``) releases its
    connection earlier.
    """

    def __init__(self, resp: aiohttp.ClientResponse, seq: int, first_chunk: bytes, url: str) -> None:
        self.seq = seq
        self.url = url
        self.mime_type: str | None = resp.headers.get("Content-Type")
        self._resp = resp
        self._first: bytes | None = first_chunk
        self._done = False
        self.complete = False  # True once the whole body was read without error
        self.bytes_read = 0

    async def iter_chunks(self, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Yield the body in chunks as they arrive; raise SegmentError if it is cut off."""
        if self._first is not None:
            first, self._first = self._first, None
            self.bytes_read += len(first)
            yield first
        while not self._done:
            try:
                chunk = await self._resp.content.read(chunk_size)
            except (TimeoutError, aiohttp.ClientError) as e:
                self._finish()
                raise SegmentError(
                    f"segment {self.seq} cut off after {self.bytes_read} bytes: {describe(e)}",
                    url=self.url,
                    seq=self.seq,
                ) from e
            if not chunk:
                self.complete = True
                self._finish()
                return
            self.bytes_read += len(chunk)
            yield chunk

    async def read(self, max_bytes: int = DEFAULT_MAX_READ) -> bytes:
        """The whole (remaining) body; SegmentError if it exceeds ``max_bytes`` or is cut off."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self.iter_chunks():
            size += len(chunk)
            if size > max_bytes:
                self.close()
                raise SegmentError(f"segment {self.seq} is larger than {max_bytes} bytes", url=self.url, seq=self.seq)
            parts.append(chunk)
        return b"".join(parts)

    def _finish(self) -> None:
        self._done = True
        self._first = None
        self._resp.release()

    def close(self) -> None:
        """Drop the rest of the body and free the connection (idempotent)."""
        if not self._done:
            self._done = True
            self._first = None
            # close(), not release(): the body was not read to the end, so the
            # connection cannot be reused.
            self._resp.close()

    @property
    def closed(self) -> bool:
        return self._done

    async def __aenter__(self) -> Segment:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Segment(seq={self.seq}, url={channel_label(self.url)!r})"


class Subscriber:
    """``async for segment in Subscriber(url)`` yields the channel's segments in order.

    Starts at ``start_seq``: -2 (default, like PyTrickle) is the segment in progress from its
    start, falling back to -1 (the next segment, the live edge) on servers that reject -2; -1 or
    an explicit seq can be asked for. Iteration stops when the channel is closed or unknown (404).
    Transient failures (connection refused/reset, 5xx) are retried with backoff; past the retry
    budget ``TrickleError`` is raised. Empty segments are skipped. Use one consumer at a time.
    """

    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession | None = None,
        *,
        start_seq: int = SEQ_CURRENT,
        retry: RetryPolicy = DEFAULT_RETRY,
        connect_timeout: float = 10.0,
        refresh_interval: float = PRECONNECT_REFRESH_S,
        verify_ssl: bool = False,
        read_timeout: float = SOCK_READ_TIMEOUT_S,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = SessionHolder(session, verify_ssl)
        self._next_seq = start_seq
        self._retry = retry
        self._connect_timeout = connect_timeout
        self._refresh = refresh_interval
        self._read_timeout = read_timeout  # a body that stalls this long is cut off (its slot is not held forever)
        self._current: Segment | None = None
        self._pending: asyncio.Task[Segment | None] | None = None
        self._ended = False
        self._closed = False

    @property
    def next_seq(self) -> int:
        """The seq that will be requested next (-1/-2 until the first segment arrived)."""
        return self._next_seq

    @property
    def ended(self) -> bool:
        return self._ended

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> Segment:
        if self._current is not None:
            self._current.close()
            self._current = None
        if self._ended or self._closed:
            raise StopAsyncIteration
        if self._pending is None:
            self._pending = self._spawn_fetch(self._next_seq)
        pending = self._pending
        try:
            # Shielded: a caller that gives up waiting (cancel, timeout) leaves the GET running, and
            # the next call picks it up instead of losing its place in the channel.
            segment = await asyncio.shield(pending)
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if self._closed and not (me is not None and me.cancelling()):
                raise StopAsyncIteration from None  # close() from another task: a clean end
            if pending.done():
                self._pending = None
                self._ended = True
            raise
        except BaseException:
            self._pending = None
            self._ended = True
            raise
        self._pending = None
        if segment is not None and self._closed:
            segment.close()
            segment = None
        if segment is None:
            self._ended = True
            raise StopAsyncIteration
        self._current = segment
        self._next_seq = segment.seq + 1
        # Like upstream, open the GET for the next segment while this one is read, so it is
        # waiting at the server (and gets its first bytes) the moment the segment starts.
        self._pending = self._spawn_fetch(self._next_seq)
        return segment

    def _spawn_fetch(self, seq: int) -> asyncio.Task[Segment | None]:
        return asyncio.create_task(self._fetch(seq), name="trickle GET")

    async def next(self) -> Segment | None:
        """The next segment, or None at the end of the channel."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            return None

    async def _fetch(self, seq: int) -> Segment | None:
        """GET segments from ``seq`` on until one with data, the end (None), or retries run out."""
        failures = 0
        out_of_window = 0
        while not self._closed:
            url = segment_url(self.url, seq)
            try:
                resp = await self._get(url)
            except TRANSIENT_ERRORS as e:
                if seq == SEQ_CURRENT and isinstance(e, aiohttp.ServerDisconnectedError):
                    # Older servers index their ring with the raw -2 and drop the connection.
                    log.info(
                        "trickle: %s rejected seq -2 (%s); starting at the live edge instead",
                        channel_label(self.url),
                        describe(e),
                    )
                    seq = SEQ_NEXT
                    continue
                failures += 1
                await self._backoff(failures, f"GET {channel_label(url)} failed: {describe(e)}", e)
                continue

            status = resp.status
            if is_closed(resp.headers):
                resp.release()
                log.info("trickle: channel %s closed", channel_label(self.url))
                return None
            if status == 404:
                resp.release()
                log.info("trickle: channel %s not found (404), ending", channel_label(self.url))
                return None
            if status == STATUS_OUT_OF_WINDOW:
                latest = int_header(resp.headers, LATEST_HEADER)
                resp.release()
                out_of_window += 1
                log.warning(
                    "trickle: %s seq %s is out of the window, jumping to latest %s",
                    channel_label(self.url),
                    seq,
                    latest,
                )
                seq = latest if latest is not None and latest >= 0 else SEQ_NEXT
                if out_of_window > 3:
                    # A server that keeps answering 470 is not making progress: back off.
                    failures += 1
                    await self._backoff(failures, f"GET {channel_label(url)} keeps answering 470", None)
                continue
            if status != 200:
                body = await _short_body(resp)
                if seq == SEQ_CURRENT:
                    log.info(
                        "trickle: %s rejected seq -2 (%s); starting at the live edge instead",
                        channel_label(self.url),
                        status,
                    )
                    seq = SEQ_NEXT
                    continue
                if is_transient_status(status):
                    failures += 1
                    await self._backoff(failures, f"GET {channel_label(url)} answered {status}: {body}", None, status)
                    continue
                raise TrickleError(f"GET {channel_label(url)} answered {status}: {body}", url=url, status=status)

            got = int_header(resp.headers, SEQ_HEADER)
            seg_seq = got if got is not None and got >= 0 else seq
            # Servers send headers together with the first bytes, so reading one chunk here costs
            # nothing and lets empty segments (dropped or closed ones) be skipped.
            try:
                first = await resp.content.readany()
            except (TimeoutError, aiohttp.ClientError) as e:
                resp.close()
                failures += 1
                await self._backoff(failures, f"GET {channel_label(url)} broke before any data: {describe(e)}", e)
                continue
            if not first:
                resp.release()
                log.debug("trickle: %s segment %s is empty, skipping", channel_label(self.url), seg_seq)
                seq = seg_seq + 1 if seg_seq >= 0 else SEQ_NEXT
                continue
            return Segment(resp, seg_seq, first, segment_url(self.url, seg_seq))
        return None

    async def _get(self, url: str) -> aiohttp.ClientResponse:
        session = self._http.get()
        while True:
            try:
                async with asyncio.timeout(self._refresh) as deadline:
                    return await session.get(
                        url, timeout=request_timeout(self._connect_timeout, self._read_timeout), allow_redirects=False
                    )
            except TimeoutError:
                if deadline.expired():
                    # Nothing published for a while: re-issue the waiting GET, as upstream does, so
                    # a silently dead connection cannot hang the subscriber.
                    log.debug("trickle: refreshing pre-connected GET %s", channel_label(url))
                    continue
                raise

    async def _backoff(self, failures: int, what: str, cause: BaseException | None, status: int | None = None) -> None:
        if self._retry.exhausted(failures):
            raise TrickleError(
                f"trickle subscriber {channel_label(self.url)}: giving up after {failures} attempts: {what}",
                url=self.url,
                status=status,
            ) from cause
        delay = self._retry.delay(failures)
        log.warning("trickle: %s (attempt %d/%d), retrying in %.2fs", what, failures, self._retry.attempts, delay)
        await asyncio.sleep(delay)

    async def close(self) -> None:
        """Stop: cancel the pre-connected GET, drop the current segment, close an own session."""
        self._closed = True
        if self._current is not None:
            self._current.close()
            self._current = None
        pending, self._pending = self._pending, None
        if pending is not None:
            segment = await cancel_and_wait(pending)
            if segment is not None:
                segment.close()
        await self._http.close()

    async def __aenter__(self) -> Subscriber:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def _short_body(resp: aiohttp.ClientResponse, limit: int = 512) -> str:
    try:
        data = await resp.content.read(limit)
    except (TimeoutError, aiohttp.ClientError):
        data = b""
    finally:
        resp.close()
    return data.decode(errors="replace").strip()
