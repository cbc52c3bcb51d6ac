"""What each stage of a session's pipeline hands the next.

    ingest --DecodedVideo / DecodedAudio--> processing --EncodeItem--> encode lane --PublishPart--> publish

Every item carries what the next stage needs and nothing it has to look up elsewhere; ``decoded_at`` (the
``time.monotonic()`` at which the decoder produced the frame) travels with video so each stage can report its
share of the latency.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

import av
import torch

from ..frames import FrameOrigin
from ..media.encode import SegmentBoundary
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


@dataclass(frozen=True, slots=True)
class ProcessedVideo:
    frame: EncodableVideo
    decoded_at: float

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
