"""The input side of a session: trickle segments -> the decode lane (one thread) -> decoded frames.

Each input segment's chunks go to the decoder as they arrive (pytrickle media.py ``_subscribe`` pipes them into
one decoder instead). At most ``decode_backlog`` segments wait for the decoder; beyond that reading pauses, and
the trickle server's window skips us ahead (470). Decoded frames reach the session's loop through ``on_video``
and ``on_audio``; video faster than the stream's ``max_framerate`` is dropped first.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import aiohttp
import av

from .. import events, trickle
from ..media.decode import FrameRateLimiter, SegmentDecoder, SegmentReader, SegmentReport
from .context import StageContext
from .items import DecodedAudio, DecodedVideo, presentation_time
from .settings import SessionFailure

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Pending:
    """A segment handed to the decode lane."""

    report: asyncio.Future[SegmentReport]
    reader: SegmentReader


class Ingest:
    def __init__(
        self,
        ctx: StageContext,
        limiter: FrameRateLimiter,
        on_video: Callable[[DecodedVideo], None],
        on_audio: Callable[[DecodedAudio], None],
    ) -> None:
        self._ctx = ctx
        self._limiter = limiter
        self._on_video = on_video
        self._on_audio = on_audio
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"decode-{ctx.stream_id[:16]}")
        self._decoder = SegmentDecoder(hardware=ctx.settings.hw_decode, max_pixels=ctx.settings.max_input_pixels)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._readers: set[SegmentReader] = set()
        self._bad_segments = 0
        # The input carries audio: output segments must carry an audio stream from the first one on (read by
        # the encode lane's thread).
        self.has_audio = False

    async def read(self, url: str, http: aiohttp.ClientSession) -> None:
        """Decode the input channel until it ends; ``SessionFailure`` on input this worker cannot take."""
        ctx = self._ctx
        self._loop = loop = asyncio.get_running_loop()
        limit = ctx.settings.max_segment_bytes
        pending: deque[_Pending] = deque()
        async with trickle.Subscriber(url, session=http) as subscriber:
            async for segment in subscriber:
                ctx.stats.segments_in += 1
                ctx.metrics.segments_in.inc()
                if ctx.stats.segments_in == 1:
                    ctx.events.put(events.trace(events.FIRST_INGEST_SEGMENT))
                reader = SegmentReader()
                self._readers.add(reader)
                future = loop.run_in_executor(self._pool, self._decoder.decode, reader, self._on_decoded)
                future.add_done_callback(functools.partial(self._forget, reader))
                pending.append(_Pending(future, reader))
                cut = False
                try:
                    async for chunk in segment.iter_chunks():
                        if reader.bytes_fed + len(chunk) > limit:
                            reader.abort()
                            raise SessionFailure(f"input segment larger than {limit} bytes", "input")
                        await reader.put(chunk)
                        if future.done():
                            break  # the decoder stopped reading (refused input): do not wait for the rest
                except trickle.SegmentError as exc:
                    cut = True  # its last frame may be incomplete: dropped rather than decoded half
                    log.info("session %s: input segment cut short: %s", ctx.stream_id, exc)
                finally:
                    reader.finish(cut=cut)
                while pending and (len(pending) > ctx.settings.decode_backlog or pending[0].report.done()):
                    await self._settle(pending.popleft())
        while pending:
            await self._settle(pending.popleft())
        # The input is over: the frames the decoder holds back to reorder B-frames come out too.
        await loop.run_in_executor(self._pool, self._decoder.flush, self._on_decoded)

    def _forget(self, reader: SegmentReader, _: object) -> None:
        self._readers.discard(reader)

    async def _settle(self, segment: _Pending) -> None:
        """Account for one decoded segment; too many undecodable ones in a row end the session."""
        report = await segment.report
        if report.refused is not None:
            raise SessionFailure(report.refused, "input")
        if report.errors:
            self._ctx.metrics.errors.labels("decode").inc()
        if report.video_frames or report.audio_frames:
            self._bad_segments = 0
            return
        if segment.reader.bytes_fed == 0:
            return  # an empty segment is not an error
        self._bad_segments += 1
        self._ctx.events.error(f"input segment could not be decoded: {'; '.join(report.errors)}", "decode")
        if self._bad_segments >= self._ctx.settings.max_bad_segments:
            raise SessionFailure(f"{self._bad_segments} input segments in a row could not be decoded", "decode")

    def _on_decoded(self, frame: av.VideoFrame | av.AudioFrame) -> None:
        """Decode thread: hand a decoded frame to the loop (frames faster than max_framerate are dropped)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        now = time.monotonic()
        if self._decoder.has_audio:
            # Known from the segment's PMT: video decoded before the first audio frame (no demuxer parsing
            # delay) must still open output segments that carry audio.
            self.has_audio = True
        try:
            if isinstance(frame, av.VideoFrame):
                self._ctx.metrics.stage_seconds.labels("decode").observe(self._decoder.video_decode_s)
                self._ctx.metrics.stage_seconds.labels("reorder").observe(self._decoder.video_reorder_s)
                if not self._limiter.accept(presentation_time(frame)):
                    self._ctx.metrics.frames_dropped.labels("video", "framerate").inc()
                    return
                loop.call_soon_threadsafe(self._video_decoded, DecodedVideo(frame, now))
            else:
                self.has_audio = True
                loop.call_soon_threadsafe(self._on_audio, DecodedAudio(frame, now))
        except RuntimeError:
            pass  # loop closed during shutdown

    def _video_decoded(self, item: DecodedVideo) -> None:
        self._ctx.metrics.frames_in.labels("video").inc()
        self._ctx.stats.ingress_video.tick()
        self._on_video(item)

    def abort(self) -> None:
        """Unblock a decode thread waiting for bytes (the session is ending)."""
        for reader in list(self._readers):
            reader.abort()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
