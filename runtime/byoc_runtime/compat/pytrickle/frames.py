"""``pytrickle.frames`` stand-in."""

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

__all__ = [
    "DEFAULT_HEIGHT",
    "DEFAULT_WIDTH",
    "AudioFrame",
    "AudioOutput",
    "InputFrame",
    "OutputFrame",
    "SideData",
    "VideoFrame",
    "VideoOutput",
]
