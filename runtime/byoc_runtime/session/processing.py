"""The processor stage: decoded frames -> the processor -> the encode queue.

Decoded frames wait in drop-oldest queues (latency stays bounded when the processor lags). Video goes to the
processor's thread as a decoded frame wrapped in a deferred ``VideoFrame`` (``to_processor_frame``): it is
scaled/cropped to a tensor there when the processor reads ``frame.tensor``, not before, so a frame handed on
unread is encoded from its decoded picture. Audio goes to ``process_audio_async`` unless the processor keeps
the default pass-through. Video and audio run as two loops sharing the processor; the encode queue closes when
both end. What a processor returns is read as pytrickle ``client.py`` does (``normalize_*_result``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import av
import torch

from ..frames import AudioFrame, VideoFrame, is_video_frame
from ..processors.base import FrameProcessor
from ..queues import Closed, DropQueue
from .context import StageContext
from .items import (
    DecodedAudio,
    DecodedPicture,
    DecodedVideo,
    EncodableAudio,
    EncodableVideo,
    EncodeItem,
    PassthroughAudio,
    PassthroughVideo,
    ProcessedAudio,
    ProcessedVideo,
)
from .params import SessionParams
from .processor import ProcessorLink
from .settings import SessionFailure


class DecodedFrames:
    """Decoded frames waiting for the processor."""

    def __init__(self, ctx: StageContext) -> None:
        self._ctx = ctx
        settings = ctx.settings
        self.video: DropQueue[DecodedVideo] = DropQueue(settings.video_queue, max_wait=settings.video_wait_s)
        self.audio: DropQueue[DecodedAudio] = DropQueue(ctx.settings.audio_queue)

    @property
    def video_wanted(self) -> bool:
        """The processor waits for its next video frame."""
        return not len(self.video) and not self.video.closed

    def put_video(self, item: DecodedVideo) -> None:
        if dropped := self.video.put(item):
            self._ctx.stats.frames_dropped += dropped
            self._ctx.metrics.frames_dropped.labels("video", "processing_behind").inc(dropped)

    def put_audio(self, item: DecodedAudio) -> None:
        self._ctx.metrics.frames_in.labels("audio").inc()
        self._ctx.stats.ingress_audio.tick()
        if dropped := self.audio.put(item):
            self._ctx.metrics.frames_dropped.labels("audio", "processing_behind").inc(dropped)

    def close(self) -> None:
        self.video.close()
        self.audio.close()


def to_processor_frame(picture: DecodedPicture) -> VideoFrame:
    """A decoded frame as processors take it: its tensor (scaled and centre-cropped to the picture's size, float)
    made when first read."""
    av_frame = picture.frame
    if av_frame.pts is None or av_frame.time_base is None:
        raise ValueError("decoded frame without a timestamp")
    frame = VideoFrame.deferred(picture, av_frame.pts, av_frame.time_base)
    frame.log_timestamps["frame_init"] = time.time()
    return frame


@dataclass(frozen=True, slots=True)
class _VideoCall:
    """One frame's trip through the processor (on its thread): a failure is reported, not raised."""

    frame: VideoFrame
    result: Any
    error: Exception | None
    process_s: float  # the processor's own time, without making the tensor
    convert_s: float  # making the tensor, when the processor read it (0 when it did not)


class Processing:
    def __init__(
        self,
        ctx: StageContext,
        processor: ProcessorLink,
        params: SessionParams,
        decoded: DecodedFrames,
        out: DropQueue[EncodeItem],
        catch_up: Callable[[], None],
    ) -> None:
        self._ctx = ctx
        self._processor = processor
        self._params = params
        self._in = decoded
        self._out = out
        self._catch_up = catch_up
        self._producers_left = 2

    async def _process(self, av_frame: av.VideoFrame) -> _VideoCall:
        """Runs on the processor's loop (so the tensor, if the processor reads it, is made there too)."""
        settings = self._ctx.settings
        picture = DecodedPicture(
            av_frame, self._params.width, self._params.height, settings.interpolation, settings.frame_device
        )
        frame = to_processor_frame(picture)
        started = time.perf_counter()
        error: Exception | None = None
        try:
            result = await self._processor.instance.process_video_async(frame)
        except Exception as exc:
            result, error = None, exc
        elapsed = time.perf_counter() - started
        return _VideoCall(frame, result, error, elapsed - picture.convert_s, picture.convert_s)

    async def run_video(self) -> None:
        ctx = self._ctx
        consecutive_errors = 0
        # No video handler (an audio processor such as whisper): frames are encoded as decoded, no tensor made.
        untouched = type(self._processor.instance).process_video_async is FrameProcessor.process_video_async
        try:
            while True:
                self._catch_up()
                item = await self._in.video.get()
                if isinstance(item, Closed):
                    break
                ctx.metrics.stage_seconds.labels("queue").observe(time.monotonic() - item.decoded_at)
                if untouched and item.frame.width * item.frame.height <= ctx.settings.max_output_pixels:
                    ctx.metrics.frames_processed.labels("video").inc()
                    ctx.stats.processed_video.tick()
                    if dropped := self._out.put(PassthroughVideo(item.frame, item.decoded_at)):
                        ctx.metrics.frames_dropped.labels("video", "encoding_behind").inc(dropped)
                    continue
                call: _VideoCall = await self._processor.call(self._process, item.frame)
                if call.convert_s:
                    ctx.metrics.stage_seconds.labels("convert").observe(call.convert_s)
                ctx.metrics.stage_seconds.labels("process").observe(call.process_s)
                result = call.result
                if call.error is not None:
                    consecutive_errors += 1
                    ctx.events.error(f"process_video_async failed: {call.error!r}", "processor")
                    if consecutive_errors >= ctx.settings.max_processor_errors:
                        raise SessionFailure(f"processor failed on {consecutive_errors} frames in a row", "processor")
                    result = call.frame  # keep the stream alive with the input frame
                else:
                    consecutive_errors = 0
                try:
                    output = normalize_video_result(result, call.frame)
                except TypeError as exc:
                    ctx.events.error(str(exc), "processor")
                    output = call.frame
                if output is None:
                    ctx.metrics.frames_dropped.labels("video", "withheld").inc()
                    continue
                ctx.metrics.frames_processed.labels("video").inc()
                ctx.stats.processed_video.tick()
                if dropped := self._out.put(ProcessedVideo(output, item.decoded_at)):
                    ctx.metrics.frames_dropped.labels("video", "encoding_behind").inc(dropped)
        finally:
            self._producer_done()

    async def run_audio(self) -> None:
        instance = self._processor.instance
        # The default hook passes audio through; skip the round trip to the processor thread then.
        passthrough = getattr(type(instance), "process_audio_async", None) is FrameProcessor.process_audio_async
        try:
            while not isinstance(item := await self._in.audio.get(), Closed):
                if passthrough:
                    self._out.put(PassthroughAudio(item.frame))
                    continue
                try:
                    result = await self._processor.call(instance.process_audio_async, AudioFrame(item.frame))
                except SessionFailure:
                    raise
                except Exception as exc:
                    self._ctx.events.error(f"process_audio_async failed: {exc!r}", "processor")
                    continue
                for out in normalize_audio_result(result):
                    self._ctx.metrics.frames_processed.labels("audio").inc()
                    self._out.put(ProcessedAudio(out))
        finally:
            self._producer_done()

    def _producer_done(self) -> None:
        self._producers_left -= 1
        if self._producers_left == 0:
            self._out.close()


def normalize_video_result(result: Any, frame: VideoFrame) -> EncodableVideo | None:
    """What a processor returned -> a frame to encode, or None to skip (pytrickle client.py semantics).

    ``None`` and pytrickle's ``VideoProcessingResult.WITHHELD`` skip the frame; a bare tensor is taken as the
    new image for this frame; anything frame-like (ours, or a real pytrickle ``VideoFrame``) is used as is.
    """
    if result is None or getattr(result, "value", None) == "withheld":
        return None
    if isinstance(result, torch.Tensor):
        return frame.replace_tensor(result)
    if is_video_frame(result):
        return cast(EncodableVideo, result)
    raise TypeError(f"process_video_async returned {type(result).__name__}, expected a VideoFrame or None")


def normalize_audio_result(result: Any) -> list[EncodableAudio]:
    """``None`` drops the audio (pytrickle client.py); one frame or a list of frames pass on."""
    if result is None:
        return []
    if isinstance(result, list | tuple):
        return [f for f in result if f is not None]
    return [result]
