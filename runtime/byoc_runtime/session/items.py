"""What each stage of a session's pipeline hands the next.

    ingest --DecodedVideo / DecodedAudio--> processing --EncodeItem--> encode lane --PublishPart--> publish

Every item carries what the next stage needs and nothing it has to look up elsewhere; ``decoded_at`` (the
``time.monotonic()`` at which the decoder produced the frame) travels with video so each stage can report its
share of the latency.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

import av
import torch

from ..frames import FrameOrigin, VideoFrame
from ..media.convert import rgb_to_tensor, rgb_to_video_frame, scaled_yuv420p, video_frame_to_rgb
from ..media.encode import SegmentBoundary
from ..media.geometry import plan_scale_crop
from ..queues import DropQueue


def presentation_time(frame: av.VideoFrame | av.AudioFrame) -> float:
    """A decoded frame's timestamp in seconds (the decoder hands on only frames that have one)."""
    if frame.pts is None or frame.time_base is None:
        raise ValueError("decoded frame without a timestamp")
    return float(frame.pts * frame.time_base)


@dataclass(frozen=True, slots=True)
class DecodedVideo:
    frame: av.VideoFrame
    decoded_at: float


@dataclass(frozen=True, slots=True)
class DecodedAudio:
    frame: av.AudioFrame
    decoded_at: float


class EncodableVideo(Protocol):
    """A processed video frame: ours, or one built by a real pytrickle install."""

    @property
    def tensor(self) -> torch.Tensor: ...

    @property
    def timestamp(self) -> int: ...

    @property
    def time_base(self) -> Fraction: ...


class EncodableAudio(Protocol):
    """A processed audio frame (``frames.AudioFrame`` or pytrickle's)."""

    @property
    def timestamp(self) -> int: ...

    @property
    def time_base(self) -> Fraction: ...

    def to_av_frame(self) -> av.AudioFrame: ...


class DecodedPicture:
    """A decoded frame as the processor is to see it (scaled and centre-cropped to ``width`` x ``height``), made
    into a float tensor only when the processor reads ``VideoFrame.tensor`` (``frames.PendingTensor``), and
    encoded as it is when the processor never does."""

    __slots__ = ("convert_s", "device", "frame", "height", "interpolation", "width")

    def __init__(
        self, frame: av.VideoFrame, width: int, height: int, interpolation: str, device: torch.device | str | None
    ) -> None:
        self.frame = frame
        self.width, self.height = width, height
        self.interpolation = interpolation
        self.device = device
        self.convert_s = 0.0  # the time making the tensor took (on the processor's thread), once made

    @property
    def _needs_crop(self) -> bool:
        return plan_scale_crop(self.frame.width, self.frame.height, self.width, self.height).needs_crop

    def make_tensor(self, frame: VideoFrame) -> torch.Tensor:
        """The float tensor; the frame remembers the uint8 image (and, with no crop, the decoded frame) it was made
        from, so an unmodified tensor is encoded from those instead of being converted back."""
        started = time.perf_counter()
        rgb = video_frame_to_rgb(self.frame, self.width, self.height, self.interpolation)
        # A processor often reads the tensor inside ``torch.inference_mode()``; made there it would be an
        # inference tensor, which keeps no version counter (the origin needs it) and refuses later in-place edits.
        with torch.inference_mode(False):
            tensor = rgb_to_tensor(rgb, self.device)
        frame.origin = FrameOrigin(tensor, tensor._version, rgb, None if self._needs_crop else self.frame)
        self.convert_s = time.perf_counter() - started
        return tensor

    def picture(self) -> av.VideoFrame:
        """What to encode for a frame whose tensor nobody read: the picture at the processor's size, scaled in
        yuv420p (through RGB only where a crop is needed)."""
        if self._needs_crop:
            return rgb_to_video_frame(video_frame_to_rgb(self.frame, self.width, self.height, self.interpolation))
        return scaled_yuv420p(self.frame, self.width, self.height, self.interpolation)


@dataclass(frozen=True, slots=True)
class ProcessedVideo:
    frame: EncodableVideo
    decoded_at: float

    def untouched_picture(self) -> DecodedPicture | None:
        """The decoded picture behind the frame, if the processor handed it on without reading its tensor."""
        pending = getattr(self.frame, "pending", None)
        return pending if isinstance(pending, DecodedPicture) else None

    def reusable_origin(self) -> FrameOrigin | None:
        """The uint8 image the frame's tensor was made from, if the processor left that tensor unmodified."""
        origin = getattr(self.frame, "origin", None)
        return origin if isinstance(origin, FrameOrigin) and origin.matches(self.frame.tensor) else None


@dataclass(frozen=True, slots=True)
class PassthroughVideo:
    """A decoded frame encoded as it is: the processor has no video handler (an audio processor such as
    ``whisper``), so no tensor is made and the picture keeps the input's size."""

    frame: av.VideoFrame
    decoded_at: float


@dataclass(frozen=True, slots=True)
class PassthroughAudio:
    """Decoded audio the processor does not look at (it keeps the default ``process_audio_async``)."""

    frame: av.AudioFrame


@dataclass(frozen=True, slots=True)
class ProcessedAudio:
    frame: EncodableAudio


EncodeItem = ProcessedVideo | PassthroughVideo | PassthroughAudio | ProcessedAudio
PublishPart = bytes | SegmentBoundary  # a segment's bytes, in order, each segment opened by a boundary


def is_video(item: EncodeItem) -> bool:
    return isinstance(item, ProcessedVideo | PassthroughVideo)


def encode_queue(maxsize: int) -> DropQueue[EncodeItem]:
    """Processed frames waiting for the encoder; only video counts and drops (audio is bounded upstream)."""
    return DropQueue(maxsize, is_video)
