"""``pytrickle.fps_meter`` stand-in: ``FPSMeter``, frame rates over a rolling time window (v0.1.8 ``fps_meter.py``).

A rate is (samples in the window - 1) / (newest - oldest), 0.0 with fewer than two samples in the window.
"""

from __future__ import annotations

import time
from collections import deque

_STREAMS = ("ingress_video", "ingress_audio", "egress_video", "egress_audio")


class FPSMeter:
    def __init__(self, window_seconds: float = 10.0, max_samples: int = 600) -> None:
        self.window_seconds = window_seconds
        self._stamps: dict[str, deque[float]] = {name: deque(maxlen=max_samples) for name in _STREAMS}

    def _record(self, name: str) -> None:
        self._stamps[name].append(time.monotonic())

    def _rate(self, name: str) -> float:
        stamps = self._stamps[name]
        cutoff = time.monotonic() - self.window_seconds
        recent = [t for t in stamps if t >= cutoff]
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])

    def record_ingress_video_frame(self) -> None:
        self._record("ingress_video")

    def record_ingress_audio_frame(self) -> None:
        self._record("ingress_audio")

    def record_egress_video_frame(self) -> None:
        self._record("egress_video")

    def record_egress_audio_frame(self) -> None:
        self._record("egress_audio")

    def get_ingress_video_fps(self) -> float:
        return self._rate("ingress_video")

    def get_ingress_audio_fps(self) -> float:
        return self._rate("ingress_audio")

    def get_egress_video_fps(self) -> float:
        return self._rate("egress_video")

    def get_egress_audio_fps(self) -> float:
        return self._rate("egress_audio")

    def get_fps_stats(self) -> dict[str, float]:
        return {f"{name}_fps": self._rate(name) for name in _STREAMS}

    def reset(self) -> None:
        for stamps in self._stamps.values():
            stamps.clear()


__all__ = ["FPSMeter"]
