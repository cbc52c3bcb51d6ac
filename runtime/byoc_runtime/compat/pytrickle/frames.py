"""``pytrickle.frames`` stand-in: this runtime's frame types, plus ``FrameBuffer`` (v0.1.8 ``frames.py``)."""

from __future__ import annotations

from collections import deque

from byoc_runtime.frames import (
    DEFAULT_HEIGHT,
    DEFAULT_WIDTH,
    AudioFrame,
    AudioOutput,
    InputFrame,
    OutputFrame,
    SideData,
    VideoFrame,
    VideoOutput,
)


class FrameBuffer:
    """A rolling buffer of the latest ``max_frames`` frames; older ones are discarded (and counted)."""

    def __init__(self, max_frames: int = 300) -> None:
        self.max_frames = max_frames
        self.frames: deque[VideoFrame | AudioFrame] = deque(maxlen=max_frames)
        self.total_frames_received = 0
        self.total_frames_discarded = 0

    def add_frame(self, frame: VideoFrame | AudioFrame) -> None:
        if len(self.frames) >= self.max_frames:
            self.total_frames_discarded += 1
        self.frames.append(frame)
        self.total_frames_received += 1

    def get_frame(self) -> VideoFrame | AudioFrame | None:
        return self.frames.popleft() if self.frames else None

    def get_all_frames(self) -> list[VideoFrame | AudioFrame]:
        frames = list(self.frames)
        self.frames.clear()
        return frames

    def clear(self) -> None:
        self.frames.clear()

    def size(self) -> int:
        return len(self.frames)

    def get_stats(self) -> dict[str, int]:
        return {
            "current_frames": len(self.frames),
            "max_frames": self.max_frames,
            "total_received": self.total_frames_received,
            "total_discarded": self.total_frames_discarded,
        }


__all__ = [
    "DEFAULT_HEIGHT",
    "DEFAULT_WIDTH",
    "AudioFrame",
    "AudioOutput",
    "FrameBuffer",
    "InputFrame",
    "OutputFrame",
    "SideData",
    "VideoFrame",
    "VideoOutput",
]
