"""``pytrickle.frame_processor`` stand-in."""

from byoc_runtime.processors.base import FrameProcessor

__all__ = ["FrameProcessor"]
