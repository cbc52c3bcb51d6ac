"""``pytrickle.decorators`` stand-in."""

from byoc_runtime.processors.handlers import (
    audio_handler,
    model_loader,
    on_stream_start,
    on_stream_stop,
    param_updater,
    video_handler,
)

__all__ = ["audio_handler", "model_loader", "on_stream_start", "on_stream_stop", "param_updater", "video_handler"]
