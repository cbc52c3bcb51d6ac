"""The counters a session reports in its status and heartbeats."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..metrics import RateMeter


@dataclass(slots=True)
class StreamStats:
    ingress_video: RateMeter = field(default_factory=RateMeter)
    ingress_audio: RateMeter = field(default_factory=RateMeter)
    processed_video: RateMeter = field(default_factory=RateMeter)
    egress_video: RateMeter = field(default_factory=RateMeter)
    segments_in: int = 0
    segments_out: int = 0
    frames_dropped: int = 0  # video frames the processor never saw because it was behind

    def fps(self) -> dict[str, float]:
        """The rates as pytrickle's status and heartbeat name them."""
        return {
            "ingress_video_fps": self.ingress_video.rate(),
            "ingress_audio_fps": self.ingress_audio.rate(),
            "processed_video_fps": self.processed_video.rate(),
            "egress_video_fps": self.egress_video.rate(),
        }
