"""Trickle publisher: one streaming (chunked) POST per segment, the next one opened ahead.

Behaviour follows go-livepeer ``trickle/trickle_publisher.go``: seqs count up from 0 on the
client; the POST for seq+1 is pre-connected when seq starts (``Next``/``preconnect``), so no
connection setup happens between segments; a segment's write waits for the server's answer;
404 means the channel is gone, ``Lp-Trickle-Closed`` that it was closed; a dropped segment is
closed politely with ``DELETE {channel}/{seq}`` (``pendingPost.Close``) so its subscribers stop
waiting; ``Close`` deletes the channel, then ends the pending pre-connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload
from multidict import CIMultiDictProxy

from ._aio import SessionHolder, cancel_and_wait, describe, request_timeout
from .errors import ChannelClosed, ChannelNotFound, SegmentError, TrickleError
from .protocol import (
    DEFAULT_RETRY,
    TRANSIENT_ERRORS,
    RetryPolicy,
    channel_label,
    is_closed,
    is_transient_status,
    segment_url,
)

log = logging.getLogger(__name__)

_EOF = None  # queue sentinel: end of the segment body
_DELETE_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, aiohttp.ClientError)


class _QueueBody(Payload):
    """A chunked request body fed from a bounded queue, with headers sent up front.

    aiohttp holds request headers back until the first body bytes; a pre-connected POST has no
    bytes yet, so the server would not see it. Flushing the headers at once makes the server
    create the segment (and keep the connection alive with 100 Continue), as with upstream's Go
    client.
    """

    _autoclose = True  # holds no resource of its own

    def __init__(self, queue: asyncio.Queue[bytes | None], started: asyncio.Event, content_type: str) -> None:
        super().__init__(None, content_type=content_type)
        self._queue = queue
        self._started = started

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a streamed trickle body cannot be decoded")

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: AbstractStreamWriter, content_length: int | None) -> None:
        writer.send_headers()
        await writer.drain()
        self._started.set()
        while (chunk := await self._queue.get()) is not _EOF:
            await writer.write(chunk)


@dataclass
class _Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: str


class _Post:
    """One POST for one seq: opened ahead of its data, fed by ``write``, ended by ``finish``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        channel_url: str,
        seq: int,
        mime_type: str,
        queue_size: int,
        connect_timeout: float,
    ) -> None:
        self.seq = seq
        self.url = segment_url(channel_url, seq)
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(queue_size)
        self.started = asyncio.Event()
        self.ended = False  # EOF queued
        body = _QueueBody(self.queue, self.started, mime_type)
        self.task = asyncio.create_task(self._run(session, body, mime_type, connect_timeout), name="trickle POST")

    async def _run(
        self, session: aiohttp.ClientSession, body: _QueueBody, mime_type: str, connect_timeout: float
    ) -> _Answer:
        async with session.post(
            self.url,
            data=body,
            headers={"Content-Type": mime_type},
            # No read timeout: a pre-connected POST waits, with nothing to read, until the next segment starts.
            timeout=request_timeout(connect_timeout, sock_read=None),
            allow_redirects=False,
        ) as resp:
            # An early answer (404, closed channel) arrives while the body is still open; leaving
            # the context cancels aiohttp's body writer, so nothing waits on the queue any more.
            text = (await resp.content.read(512)).decode(errors="replace").strip()
            return _Answer(resp.status, resp.headers, text)

    async def wait_started(self, limit_s: float) -> bool:
        """True once the request is on the wire and still open; False if it failed or timed out."""
        if not self.started.is_set() and not self.task.done():
            waiter = asyncio.ensure_future(self.started.wait())
            try:
                await asyncio.wait({waiter, self.task}, timeout=limit_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
        return self.started.is_set() and not self.task.done()

    async def put(self, item: bytes | None) -> None:
        """Queue body bytes (or EOF) without blocking forever on a POST that already ended."""
        if self.task.done():
            raise self.failure()
        try:
            self.queue.put_nowait(item)
            return
        except asyncio.QueueFull:
            pass
        putter = asyncio.ensure_future(self.queue.put(item))
        try:
            await asyncio.wait({putter, self.task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not putter.done():
                putter.cancel()
        if putter.cancelled() or not putter.done():
            raise self.failure()

    def failure(self) -> TrickleError:
        """What went wrong with a POST that ended before it should have."""
        if not self.task.done():
            return SegmentError(f"POST {channel_label(self.url)} did not start in time", url=self.url, seq=self.seq)
        if self.task.cancelled():
            return SegmentError(f"POST {channel_label(self.url)} was aborted", url=self.url, seq=self.seq)
        exc = self.task.exception()
        if exc is not None:
            err = SegmentError(f"POST {channel_label(self.url)} failed: {describe(exc)}", url=self.url, seq=self.seq)
            err.__cause__ = exc
            return err
        return _answer_error(self.url, self.seq, self.task.result(), early=not self.ended)

    async def finish(self, limit_s: float) -> _Answer:
        """End the body and wait for the server's answer (upstream's Write also waits)."""
        await self.put(_EOF)
        self.ended = True
        try:
            async with asyncio.timeout(limit_s):
                answer = await asyncio.shield(self.task)
        except TimeoutError:
            await self.abort()
            raise SegmentError(
                f"POST {channel_label(self.url)}: no answer within {limit_s}s", url=self.url, seq=self.seq
            ) from None
        except TRANSIENT_ERRORS as e:
            raise SegmentError(
                f"POST {channel_label(self.url)} failed: {describe(e)}", url=self.url, seq=self.seq
            ) from e
        if answer.status != 200 or is_closed(answer.headers):
            raise _answer_error(self.url, self.seq, answer, early=False)
        return answer

    async def end_empty(self, limit_s: float) -> None:
        """Finish a pre-connect that never got data: an empty body closes its segment empty."""
        if not self.task.done():
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(_EOF)
            self.ended = True
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(self.task), limit_s)
        await self.abort()

    async def abort(self) -> None:
        """Drop the request and its connection (idempotent)."""
        if not self.task.done():
            await cancel_and_wait(self.task)
        elif not self.task.cancelled():
            self.task.exception()  # mark retrieved: failures are reported elsewhere


def _answer_error(url: str, seq: int, answer: _Answer, *, early: bool) -> TrickleError:
    if is_closed(answer.headers):
        return ChannelClosed(f"channel of {channel_label(url)} is closed", url=url, status=answer.status)
    if answer.status == 404:
        return ChannelNotFound(f"channel of {channel_label(url)} not found (404)", url=url, status=404)
    if answer.status == 200 and early:
        return SegmentError(f"server ended segment {channel_label(url)} before its data", url=url, status=200, seq=seq)
    return SegmentError(
        f"POST {channel_label(url)} answered {answer.status}: {answer.body}", url=url, status=answer.status, seq=seq
    )


def _is_transient(post: _Post, err: TrickleError) -> bool:
    if isinstance(err, ChannelClosed):
        return False
    if post.task.done() and not post.task.cancelled() and post.task.exception() is not None:
        return isinstance(post.task.exception(), TRANSIENT_ERRORS)
    return err.status is None or is_transient_status(err.status)


class SegmentWriter:
    """Writes one segment's bytes; they are on their way to subscribers as soon as written."""

    def __init__(self, post: _Post) -> None:
        self._post = post
        self.bytes_written = 0

    @property
    def seq(self) -> int:
        return self._post.seq

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send bytes; waits when the (bounded) send queue is full. SegmentError if the POST broke."""
        if not data:
            return
        chunk = data if isinstance(data, bytes) else bytes(data)
        await self._post.put(chunk)
        self.bytes_written += len(chunk)


class _SegmentContext:
    def __init__(self, publisher: Publisher) -> None:
        self._pub = publisher
        self._post: _Post | None = None

    async def __aenter__(self) -> SegmentWriter:
        await self._pub._lock.acquire()
        try:
            self._post = await self._pub._start_segment()
        except BaseException:
            self._pub._lock.release()
            raise
        self._pub._active = self._post
        return SegmentWriter(self._post)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        post = self._post
        assert post is not None
        try:
            if exc_type is None:
                try:
                    await post.finish(self._pub._response_timeout)
                except ChannelClosed as e:
                    self._pub._gone = e
                    raise
                except SegmentError:
                    self._pub._drop(post)
                    raise
            elif isinstance(exc, ChannelClosed):
                self._pub._gone = exc
                await post.abort()
            else:
                self._pub._drop(post)
        finally:
            self._pub._active = None
            self._pub._lock.release()


class Publisher:
    """Publishes a channel, one segment per ``async with publisher.segment() as w:`` block.

    ``await w.write(data)`` streams bytes into the segment's POST; leaving the block ends it and
    waits for the server's answer. An exception inside the block (or a broken POST, raised as
    ``SegmentError``) drops that segment; the next ``segment()`` goes on with the next seq.
    Starting a segment retries connection failures with backoff (``TrickleError`` past the
    budget). ``ChannelClosed`` / ``ChannelNotFound`` mean the channel is gone: stop publishing.
    """

    def __init__(
        self,
        url: str,
        mime_type: str = "video/mp2t",
        session: aiohttp.ClientSession | None = None,
        *,
        start_seq: int = 0,
        retry: RetryPolicy = DEFAULT_RETRY,
        connect_timeout: float = 10.0,
        response_timeout: float = 10.0,
        queue_size: int = 16,
        verify_ssl: bool = False,
    ) -> None:
        self.url = url.rstrip("/")
        self.mime_type = mime_type
        self._http = SessionHolder(session, verify_ssl)
        self._seq = start_seq
        self._retry = retry
        self._connect_timeout = connect_timeout
        self._response_timeout = response_timeout
        self._queue_size = queue_size
        self._lock = asyncio.Lock()
        self._next: _Post | None = None  # pre-connected POST for self._seq
        self._active: _Post | None = None
        self._gone: ChannelClosed | None = None
        self._closed = False
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def seq(self) -> int:
        """The seq the next segment will get."""
        return self._seq

    def segment(self) -> _SegmentContext:
        return _SegmentContext(self)

    async def write_segment(self, data: bytes) -> None:
        """Publish ``data`` as one whole segment."""
        async with self.segment() as w:
            await w.write(data)

    def _open(self, seq: int) -> _Post:
        return _Post(self._http.get(), self.url, seq, self.mime_type, self._queue_size, self._connect_timeout)

    async def _start_segment(self) -> _Post:
        if self._closed:
            raise TrickleError(f"publisher {channel_label(self.url)} is closed", url=self.url)
        if self._gone is not None:
            raise self._gone
        post, self._next = self._next, None
        failures = 0
        while True:
            if self._closed:  # closed by another task while we were backing off
                raise TrickleError(f"publisher {channel_label(self.url)} is closed", url=self.url)
            if post is None:
                post = self._open(self._seq)
            if await post.wait_started(self._connect_timeout):
                break
            err = post.failure()
            await post.abort()
            if isinstance(err, ChannelClosed):
                self._gone = err
                raise err
            if isinstance(err, SegmentError) and err.status == 200:
                # The server already closed this seq (dropped or overwritten): use the next one.
                log.warning("trickle: %s; moving on to seq %d", err, post.seq + 1)
                self._seq = post.seq + 1
                post = None
                continue
            if not _is_transient(post, err):
                raise err
            failures += 1
            if self._retry.exhausted(failures):
                raise TrickleError(
                    f"trickle publisher {channel_label(self.url)}: giving up after {failures} attempts: {err}",
                    url=self.url,
                ) from err
            delay = self._retry.delay(failures)
            log.warning("trickle: %s (attempt %d/%d), retrying in %.2fs", err, failures, self._retry.attempts, delay)
            await asyncio.sleep(delay)
            post = None
        if self._closed:
            await post.abort()
            raise TrickleError(f"publisher {channel_label(self.url)} is closed", url=self.url)
        self._seq = post.seq + 1
        # Pre-connect the next segment right away, as upstream's Next() does.
        self._next = self._open(self._seq)
        return post

    def _drop(self, post: _Post) -> None:
        """Abort a failed segment and close it on the server so its subscribers move on."""
        if self._closed:
            return  # close() already aborted it; the session may be gone
        log.warning("trickle: dropping segment %s", channel_label(post.url))
        self._spawn(self._drop_async(post))

    async def _drop_async(self, post: _Post) -> None:
        await post.abort()
        await self._delete(post.url, what="segment")

    async def _delete(self, url: str, what: str) -> bool:
        try:
            async with self._http.get().delete(
                url, timeout=aiohttp.ClientTimeout(total=5), allow_redirects=False
            ) as resp:
                if resp.status == 200:
                    return True
                body = (await resp.content.read(256)).decode(errors="replace").strip()
                log.info("trickle: DELETE %s %s answered %d: %s", what, channel_label(url), resp.status, body)
        except _DELETE_ERRORS as e:
            log.warning("trickle: DELETE %s %s failed: %s", what, channel_label(url), describe(e))
        return False

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self, delete: bool = True) -> None:
        """Stop publishing: DELETE the channel (unless ``delete=False``), end the pre-connected POST,
        abort a segment still being written, and close an own session. Never raises for network errors.
        """
        if self._closed:
            return
        self._closed = True
        if delete and self._gone is None:
            await self._delete(self.url, what="channel")
        nxt, self._next = self._next, None
        if nxt is not None:
            await nxt.end_empty(limit_s=1.0)
        if self._active is not None:
            await self._active.abort()
        if self._background:
            _, still = await asyncio.wait(set(self._background), timeout=5.0)
            for task in still:
                await cancel_and_wait(task)
        await self._http.close()

    async def __aenter__(self) -> Publisher:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
