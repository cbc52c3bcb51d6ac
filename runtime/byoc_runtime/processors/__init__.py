"""Processing layer: the PyTrickle processor API, built-in processors, and how the runtime hosts them."""

from .base import FrameProcessor

__all__ = ["FrameProcessor"]
