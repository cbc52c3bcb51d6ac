"""Frames handed to processors, API-compatible with pytrickle's ``frames.py``.

The contract (pytrickle ``pytrickle/frames.py``, v0.1.6): ``VideoFrame(tensor, timestamp, time_base,
log_timestamps=None)`` with ``tensor`` float32 (1, H, W, 3) RGB in 0..1; ``replace_tensor()`` returns a new
frame with the same timing and side data; ``AudioFrame(av_frame)`` holds ``samples`` (``to_ndarray()``
layout), ``format``, ``layout``, ``rate``, ``nb_samples``, ``timestamp``, ``time_base``; ``replace_samples()``
keeps the metadata. ``VideoOutput`` / ``AudioOutput`` wrap processed frames with a request id.

Our own additions: a frame made by the runtime is *deferred* (``VideoFrame.deferred``): its tensor is made from
the decoded picture when ``tensor`` is first read, on the reading (processor's) thread, so a processor that hands
a frame on without looking at it costs no conversion and the encoder takes the decoded picture as it is
(``VideoFrame.pending``). And ``VideoFrame.origin``: the uint8 RGB image the tensor was made from and the
tensor's version counter at that moment. If a processor hands back the very same, unmodified tensor, the
encoder reuses that image instead of converting float32 back to uint8.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

import av
import numpy as np
import torch

DEFAULT_WIDTH = 512
DEFAULT_HEIGHT = 512


class SideData:
    """Mirrors pytrickle's SideData: per-frame extras a processor may read or set."""

    skipped: bool = True
    input: torch.Tensor | np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class FrameOrigin:
    """The uint8 image a tensor was built from, valid while the tensor is unmodified."""

    tensor: torch.Tensor
    version: int
    rgb: np.ndarray  # (H, W, 3) uint8, possibly a strided view
    # The decoded frame ``rgb`` was scaled from, when no crop was needed: an unmodified tensor can then be
    # encoded from it (scaled to yuv420p) without the RGB -> yuv420p round trip.
    source: av.VideoFrame | None = None

    def matches(self, tensor: torch.Tensor) -> bool:
        # _version counts in-place writes, so an in-place edit by the processor disables reuse.
        return tensor is self.tensor and tensor._version == self.version


class PendingTensor(Protocol):
    """What a deferred frame's tensor is made from (the session's decoded picture)."""

    def make_tensor(self, frame: VideoFrame) -> torch.Tensor:
        """The tensor for ``frame``; may set ``frame.origin``."""
        ...


class InputFrame:
    """Common timing fields of video and audio frames."""

    timestamp: int
    time_base: Fraction
    log_timestamps: dict[str, float]
    side_data: SideData

    @classmethod
    def from_av_video(cls, tensor: torch.Tensor, timestamp: int, time_base: Fraction) -> VideoFrame:
        return VideoFrame(tensor, timestamp, time_base)

    @classmethod
    def from_av_audio(cls, frame: av.AudioFrame) -> AudioFrame:
        return AudioFrame(frame)

    @property
    def time(self) -> float:
        """Presentation time in seconds."""
        return float(self.timestamp * self.time_base)


class VideoFrame(InputFrame):
    """A video frame as a float32 (1, H, W, 3) RGB tensor in 0..1 plus its timing."""

    def __init__(
        self,
        tensor: torch.Tensor,
        timestamp: int,
        time_base: Fraction,
        log_timestamps: dict[str, float] | None = None,
    ) -> None:
        self._setup(tensor, None, timestamp, time_base, log_timestamps)

    def _setup(
        self,
        tensor: torch.Tensor | None,
        pending: PendingTensor | None,
        timestamp: int,
        time_base: Fraction,
        log_timestamps: dict[str, float] | None,
    ) -> None:
        self._tensor, self._pending = tensor, pending
        self.timestamp = timestamp
        self.time_base = time_base
        self.log_timestamps = log_timestamps if log_timestamps is not None else {}
        self.side_data = SideData()
        self.origin: FrameOrigin | None = None

    @classmethod
    def deferred(cls, pending: PendingTensor, timestamp: int, time_base: Fraction) -> VideoFrame:
        """A frame whose tensor ``pending`` makes when ``tensor`` is first read."""
        frame = cls.__new__(cls)  # not __init__: its signature (pytrickle's) requires the tensor
        frame._setup(None, pending, timestamp, time_base, None)
        return frame

    @property
    def tensor(self) -> torch.Tensor:
        if self._tensor is None:
            assert self._pending is not None
            self._tensor = self._pending.make_tensor(self)
            self._pending = None
        return self._tensor

    @tensor.setter
    def tensor(self, value: torch.Tensor) -> None:
        self._tensor, self._pending = value, None

    @property
    def pending(self) -> PendingTensor | None:
        """What the tensor would be made from, while nobody has read or set it (the frame is still as decoded)."""
        return self._pending

    @classmethod
    def from_av_video(cls, tensor: torch.Tensor, timestamp: int, time_base: Fraction) -> VideoFrame:
        return cls(tensor, timestamp, time_base)

    @classmethod
    def from_tensor(cls, tensor: torch.Tensor, timestamp: int = 0) -> VideoFrame:
        return cls(tensor, timestamp, Fraction(1, 1))

    def replace_tensor(self, new_tensor: torch.Tensor) -> VideoFrame:
        """A new frame with ``new_tensor`` and this frame's timing and side data."""
        frame = VideoFrame(new_tensor, self.timestamp, self.time_base, dict(self.log_timestamps))
        frame.side_data = self.side_data
        frame.origin = self.origin
        return frame

    @classmethod
    def from_av_frame_with_timing(cls, av_frame: av.VideoFrame, original_frame: VideoFrame) -> VideoFrame:
        from .media.convert import rgb_to_tensor

        rgb = av_frame.to_ndarray(format="rgb24")
        return cls(rgb_to_tensor(rgb), original_frame.timestamp, original_frame.time_base)

    def to_av_frame(self, tensor: torch.Tensor | None = None) -> av.VideoFrame:
        """Convert ``tensor`` (or this frame's tensor) to an rgb24 ``av.VideoFrame``."""
        from .media.convert import tensor_to_rgb

        return av.VideoFrame.from_ndarray(tensor_to_rgb(self.tensor if tensor is None else tensor), format="rgb24")


class AudioFrame(InputFrame):
    """Audio samples in ``av.AudioFrame.to_ndarray()`` layout plus format and timing."""

    samples: np.ndarray
    format: str
    layout: str
    rate: int
    nb_samples: int

    def __init__(self, frame: av.AudioFrame) -> None:
        if frame.pts is None or frame.time_base is None:
            raise ValueError("Audio frame has no timestamp")
        self.samples = frame.to_ndarray()
        self.nb_samples = frame.samples
        self.format = frame.format.name
        self.rate = frame.sample_rate
        self.layout = frame.layout.name
        self.timestamp = frame.pts
        self.time_base = frame.time_base
        self.log_timestamps = {}
        self.side_data = SideData()

    @classmethod
    def from_av_audio(cls, av_frame: av.AudioFrame) -> AudioFrame:
        return cls(av_frame)

    @property
    def channels(self) -> int:
        return av.AudioLayout(self.layout).nb_channels

    def replace_samples(self, samples: np.ndarray) -> AudioFrame:
        return self.from_audio_frame(samples=samples)

    def from_audio_frame(self, samples: np.ndarray | None = None, timestamp: int | None = None) -> AudioFrame:
        frame = AudioFrame.__new__(AudioFrame)
        frame.samples = self.samples if samples is None else samples
        frame.nb_samples = self.nb_samples if samples is None else _sample_count(samples, self.format, self.layout)
        frame.format = self.format
        frame.rate = self.rate
        frame.layout = self.layout
        frame.timestamp = self.timestamp if timestamp is None else timestamp
        frame.time_base = self.time_base
        frame.log_timestamps = dict(self.log_timestamps)
        frame.side_data = self.side_data
        return frame

    @classmethod
    def from_tensor(
        cls,
        tensor: torch.Tensor,
        format: str = "s16",
        layout: str = "mono",
        sample_rate: int = 48000,
        timestamp: int = 0,
        time_base: Fraction | None = None,
    ) -> AudioFrame:
        """Build from a (channels, samples) float tensor in -1..1."""
        values = tensor.detach().cpu().numpy()
        if values.ndim == 1:
            values = values[np.newaxis, :]
        if format.startswith("s16"):
            samples = np.clip(values * 32768.0, -32768, 32767).astype(np.int16)
        elif format.startswith("s32"):
            samples = np.clip(values * 2147483648.0, -2147483648, 2147483647).astype(np.int32)
        else:
            samples = values.astype(np.float32)
        if not format.endswith("p"):
            # Packed formats interleave channels: to_ndarray() gives (1, samples * channels).
            samples = samples.T.reshape(1, -1)
        frame = cls.__new__(cls)
        frame.samples = samples
        frame.nb_samples = values.shape[-1]
        frame.format = format
        frame.rate = sample_rate
        frame.layout = layout
        frame.timestamp = timestamp
        frame.time_base = time_base if time_base is not None else Fraction(1, sample_rate)
        frame.log_timestamps = {}
        frame.side_data = SideData()
        return frame

    def to_av_frame(self) -> av.AudioFrame:
        frame = av.AudioFrame.from_ndarray(
            _ndarray_for_av(self.samples, self.format, self.layout), format=self.format, layout=self.layout
        )
        frame.sample_rate = self.rate
        frame.pts = self.timestamp
        frame.time_base = self.time_base
        return frame


def _sample_count(samples: np.ndarray, format: str, layout: str) -> int:
    if format.endswith("p") or samples.ndim == 1:
        return samples.shape[-1] if format.endswith("p") else samples.shape[-1] // av.AudioLayout(layout).nb_channels
    if samples.shape[0] == 1:
        return samples.shape[1] // av.AudioLayout(layout).nb_channels
    # (samples, channels) as some processors hand back packed audio
    return samples.shape[0]


_SAMPLE_DTYPES = {
    "u8": np.uint8,
    "s16": np.int16,
    "s32": np.int32,
    "s64": np.int64,
    "flt": np.float32,
    "dbl": np.float64,
}


def _ndarray_for_av(samples: np.ndarray, format: str, layout: str) -> np.ndarray:
    """Reshape samples into what ``av.AudioFrame.from_ndarray`` wants: (channels, n) planar, (1, n*ch) packed."""
    channels = av.AudioLayout(layout).nb_channels
    array = np.asarray(samples, dtype=_SAMPLE_DTYPES[format.rstrip("p")])
    if format.endswith("p"):
        return np.ascontiguousarray(array.reshape(channels, -1))
    if array.ndim == 2 and array.shape[0] != 1 and array.shape[1] == channels:
        pass  # (n, channels): already interleaved in row-major order
    elif array.ndim == 2 and array.shape[0] == channels > 1:
        array = array.T  # (channels, n) -> interleave
    return np.ascontiguousarray(array).reshape(1, -1)


class OutputFrame:
    """Base of processed frames on their way to the encoder."""

    @property
    def timestamp(self) -> int:
        raise NotImplementedError


class VideoOutput(OutputFrame):
    def __init__(self, frame: VideoFrame, request_id: str = "") -> None:
        self.frame = frame
        self.request_id = request_id

    def replace_tensor(self, tensor: torch.Tensor) -> VideoOutput:
        return VideoOutput(self.frame.replace_tensor(tensor), self.request_id)

    @property
    def tensor(self) -> torch.Tensor:
        return self.frame.tensor

    @property
    def timestamp(self) -> int:
        return self.frame.timestamp

    @property
    def time_base(self) -> Fraction:
        return self.frame.time_base

    @property
    def log_timestamps(self) -> dict[str, float]:
        return self.frame.log_timestamps


class AudioOutput(OutputFrame):
    def __init__(self, frames: list[AudioFrame], request_id: str = "") -> None:
        self.frames = frames
        self.request_id = request_id

    @property
    def timestamp(self) -> int:
        return self.frames[0].timestamp if self.frames else 0


def is_video_frame(obj: Any) -> bool:
    """Duck-typed check so frames built by a real pytrickle install are accepted too. Ours first: ``hasattr``
    reads the property, which would make a deferred frame's tensor that nobody asked for."""
    if isinstance(obj, VideoFrame):
        return True
    return hasattr(obj, "tensor") and hasattr(obj, "timestamp") and hasattr(obj, "time_base")


def is_audio_frame(obj: Any) -> bool:
    return hasattr(obj, "samples") and hasattr(obj, "format") and hasattr(obj, "layout") and hasattr(obj, "rate")
