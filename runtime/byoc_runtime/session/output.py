"""The output side of a session: processed frames -> the encode lane (one thread: tensor -> uint8 -> H.264 ->
MPEG-TS, with a second thread beside it for audio -> Opus) -> publish (one trickle POST per segment, bytes
streamed as they are encoded).

The publish queue between them is bounded and waits: when the network is slower than the encoder, the encoder
waits (and the drop-oldest encode queue before it drops video instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction

import aiohttp
import av

from .. import events, trickle
from ..media.audio_encode import AudioEncoder, EncodedAudio
from ..media.convert import rgb_to_video_frame, scaled_yuv420p, tensor_to_rgb
from ..media.encode import BufferedSink, SegmentBoundary, SegmentEncoder
from ..queues import CLOSED, Closed, DropQueue
from .context import StageContext
from .items import EncodeItem, PassthroughAudio, PassthroughVideo, ProcessedAudio, ProcessedVideo, PublishPart
from .settings import SessionFailure

log = logging.getLogger(__name__)


class EncodeLane:
    def __init__(
        self,
        ctx: StageContext,
        queue: DropQueue[EncodeItem],
        catch_up: Callable[[], None],
        input_has_audio: Callable[[], bool],
        publishing: bool,
    ) -> None:
        self._ctx = ctx
        self._queue = queue
        self._catch_up = catch_up
        self._input_has_audio = input_has_audio
        self._publishing = publishing  # False: no output channel (data-only stream), processed frames go nowhere
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"encode-{ctx.stream_id[:16]}")
        self._audio_pool = ThreadPoolExecutor(1, thread_name_prefix=f"audio-{ctx.stream_id[:16]}")
        self._audio_expected = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.parts: asyncio.Queue[PublishPart | Closed] = asyncio.Queue(ctx.settings.publish_queue)

    async def run(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        stage_seconds = self._ctx.metrics.stage_seconds
        sink = BufferedSink()
        settings = self._ctx.settings.encoder
        audio = AudioEncoder(settings.audio_codec, settings.audio_bitrate, settings.audio_layout)
        encoder = SegmentEncoder(sink, settings, audio)
        ended = False
        try:
            while not isinstance(item := await self._queue.get(), Closed):
                # Whatever else waits goes with it: one trip to the encode thread and back per batch, not per
                # frame (the thread would otherwise idle while the loop hands it each audio and video frame).
                batch = [item, *self._queue.take_ready()]
                self._catch_up()
                if not self._publishing:
                    continue
                videos = [i for i in batch if isinstance(i, ProcessedVideo | PassthroughVideo)]
                sounds = [i for i in batch if isinstance(i, PassthroughAudio | ProcessedAudio)]
                # Audio encodes on its own thread while the video is encoded; the video thread takes its packets.
                packets = self._audio_pool.submit(self._encode_audio, audio, sounds) if sounds else None
                parts, encode_s = await loop.run_in_executor(
                    self._pool, self._encode_batch, encoder, sink, videos, packets
                )
                now = time.monotonic()
                for done, seconds in zip(videos, encode_s, strict=True):
                    stage_seconds.labels("encode").observe(seconds)
                    stage_seconds.labels("decode_to_encoded").observe(now - done.decoded_at)
                for part in parts:
                    await self.parts.put(part)
            if self._publishing:
                last = await loop.run_in_executor(self._audio_pool, audio.flush)
                for part in await loop.run_in_executor(self._pool, _close_encoder, encoder, sink, last):
                    await self.parts.put(part)
            await self.parts.put(CLOSED)
            ended = True
        finally:
            if not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    self._pool.submit(encoder.close)  # frees codec contexts if we were cancelled
            if not ended:
                with contextlib.suppress(asyncio.QueueFull):
                    self.parts.put_nowait(CLOSED)  # cancelled: the publisher may still be reading

    def _encode_batch(
        self,
        encoder: SegmentEncoder,
        sink: BufferedSink,
        videos: list[ProcessedVideo | PassthroughVideo],
        packets: Future[list[EncodedAudio]] | None,
    ) -> tuple[list[PublishPart], list[float]]:
        """Encode thread: video frames into the current segment, in order, then the audio thread's packets for
        the same batch; returns the bytes produced and each video frame's encode time."""
        if self._input_has_audio() and not self._audio_expected:
            encoder.expect_audio()  # segments from now on carry an audio stream
            self._audio_expected = True
        encode_s = []
        for item in videos:
            started = time.perf_counter()
            self._encode_video(encoder, item)
            encode_s.append(time.perf_counter() - started)
        if packets is not None:
            encoder.add_audio(packets.result())
        return sink.drain(), encode_s

    def _encode_video(self, encoder: SegmentEncoder, item: ProcessedVideo | PassthroughVideo) -> None:
        try:
            if isinstance(item, ProcessedVideo):
                encoder.encode_video(self._image(item), item.frame.timestamp, item.frame.time_base)
            else:
                encoder.encode_video(item.frame, *_timestamp(item.frame))
        except (ValueError, TypeError, av.error.FFmpegError) as exc:
            self._unencodable("video", exc)
            return
        self._ctx.metrics.frames_out.labels("video").inc()
        self._ctx.stats.egress_video.tick()

    def _encode_audio(self, audio: AudioEncoder, items: list[PassthroughAudio | ProcessedAudio]) -> list[EncodedAudio]:
        """Audio thread: frames -> packets, in order."""
        packets: list[EncodedAudio] = []
        for item in items:
            try:
                if isinstance(item, PassthroughAudio):
                    packets += audio.encode(item.frame, *_timestamp(item.frame))
                else:
                    packets += audio.encode(item.frame.to_av_frame(), item.frame.timestamp, item.frame.time_base)
            except (ValueError, TypeError, av.error.FFmpegError) as exc:
                self._unencodable("audio", exc)
                continue
            self._ctx.metrics.frames_out.labels("audio").inc()
        return packets

    def _unencodable(self, kind: str, exc: Exception) -> None:
        self._ctx.metrics.frames_dropped.labels(kind, "unencodable").inc()
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(
                    self._ctx.events.error, f"cannot encode processor output: {exc}", "encode"
                )

    def _image(self, item: ProcessedVideo) -> av.VideoFrame:
        """The frame to encode: the decoded picture when the processor never read the tensor (passthrough), the
        image the tensor was made from when the processor left it unmodified, else converted from the tensor."""
        if (picture := item.untouched_picture()) is not None:
            return picture.picture()
        origin = item.reusable_origin()
        if origin is None:
            return rgb_to_video_frame(tensor_to_rgb(item.frame.tensor))
        if origin.source is not None:
            height, width = origin.rgb.shape[:2]
            return scaled_yuv420p(origin.source, width, height, self._ctx.settings.interpolation)
        return rgb_to_video_frame(origin.rgb)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._audio_pool.shutdown(wait=False, cancel_futures=True)


class Publish:
    def __init__(
        self, ctx: StageContext, parts: asyncio.Queue[PublishPart | Closed], delete_on_close: Callable[[bool], bool]
    ) -> None:
        self._ctx = ctx
        self._parts = parts
        self._delete_on_close = delete_on_close  # (finished) -> whether to delete the output channel

    async def run(self, url: str | None, http: aiohttp.ClientSession) -> None:
        if not url:
            while not isinstance(await self._parts.get(), Closed):
                pass
            return
        publisher = trickle.Publisher(url, mime_type="video/mp2t", session=http)
        segment: contextlib.AsyncExitStack | None = None
        writer: trickle.SegmentWriter | None = None
        finished = False
        try:
            while not isinstance(part := await self._parts.get(), Closed):
                try:
                    if isinstance(part, SegmentBoundary):
                        if segment is not None:
                            await segment.aclose()
                        segment = contextlib.AsyncExitStack()
                        writer = await segment.enter_async_context(publisher.segment())
                        self._published()
                    elif writer is not None:
                        await writer.write(part)
                except trickle.ChannelClosed as exc:
                    raise SessionFailure(f"output channel closed by the server: {exc}", "transport") from exc
                except trickle.SegmentError as exc:
                    # That one segment is lost; the publisher goes on with the next (trickle/__init__.py).
                    self._ctx.metrics.errors.labels("publish").inc()
                    log.info("session %s: output segment dropped: %s", self._ctx.stream_id, exc)
                    segment, writer = None, None
            finished = True
        finally:
            if segment is not None:
                with contextlib.suppress(trickle.TrickleError):
                    await segment.aclose()
            await publisher.close(delete=self._delete_on_close(finished))

    def _published(self) -> None:
        stats = self._ctx.stats
        stats.segments_out += 1
        self._ctx.metrics.segments_out.inc()
        if stats.segments_out == 1:
            self._ctx.events.put(events.trace(events.FIRST_PROCESSED_SEGMENT))


def _close_encoder(encoder: SegmentEncoder, sink: BufferedSink, last: list[EncodedAudio]) -> list[PublishPart]:
    encoder.add_audio(last)
    encoder.close()
    return sink.drain()


def _timestamp(frame: av.VideoFrame | av.AudioFrame) -> tuple[int, Fraction]:
    """A decoded frame's pts and time base (an encoder takes no frame without them)."""
    if frame.pts is None or frame.time_base is None:
        raise ValueError("frame without a timestamp")
    return frame.pts, frame.time_base
