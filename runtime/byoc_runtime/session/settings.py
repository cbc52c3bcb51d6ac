"""The per-worker knobs every session shares, and the failures that end a session."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..media.convert import DEFAULT_INTERPOLATION
from ..media.encode import EncoderSettings


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Per-worker knobs every session shares (built from ``RuntimeConfig``)."""

    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    max_framerate: int = 24
    frame_device: torch.device | None = None  # None: CPU tensors, as pytrickle hands them out
    hw_decode: bool = False
    processor_timeout: float = 15.0
    heartbeat_interval: float = 10.0
    interpolation: str = DEFAULT_INTERPOLATION
    # Decoded frames waiting for the processor: one that has waited longer than video_wait_s when a newer one comes
    # in is dropped (the processor is behind), and never more than video_queue wait. A burst decoded at once
    # (B-frames reordered, a stall caught up) goes through whole.
    video_queue: int = 8
    video_wait_s: float = 0.1
    audio_queue: int = 250  # ~5 s of 20 ms frames
    encode_queue: int = 16
    publish_queue: int = 256  # chunks; the encoder waits when the network is slower
    decode_backlog: int = 2  # segments read but not decoded yet before ingest stops reading
    # Catch-up: while more than this many seconds of decoded input wait in the jitter buffer (input ahead of
    # real time: a backlog of whole segments), frames go to the processor as fast as it takes them instead of
    # at the pace of their timestamps. Paced input never builds such a backlog and keeps being paced.
    catch_up_s: float = 0.5
    max_bad_segments: int = 10  # consecutive undecodable segments before giving up
    max_processor_errors: int = 100  # consecutive failing frames before giving up
    error_event_interval: float = 10.0  # at most one error event per kind per interval
    data_interval: float = 0.333  # pytrickle client.py batches data this often
    data_keepalive: float = 25.0
    unattended_limit_s: float = 300.0  # lifetime of a stream with neither input nor control channel
    # Untrusted media (RuntimeConfig): a larger input frame or segment ends the stream; a larger output is refused.
    max_input_pixels: int = 4096 * 4096
    max_segment_bytes: int = 64 * 1024 * 1024
    max_output_pixels: int = 1920 * 1080


class OutputTooLarge(ValueError):
    """Params asking for a larger output than this worker makes."""


class SessionFailure(Exception):
    """A condition the session cannot ride out; it ends with an error event carrying this message."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind
