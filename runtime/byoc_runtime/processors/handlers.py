"""Function-style processors: pytrickle's ``StreamProcessor`` callbacks and its handler decorators.

pytrickle (v0.1.6 ``stream_processor.py``, ``decorators.py``) lets an author skip subclassing: pass async
callbacks to ``StreamProcessor(video_processor=..., ...)``, or mark methods of any class with
``@video_handler``, ``@audio_handler``, ``@model_loader``, ``@param_updater``, ``@on_stream_start``,
``@on_stream_stop`` and call ``StreamProcessor.from_handlers(obj)``. ``CallbackProcessor`` gives those
callbacks pytrickle's semantics: a video handler returning ``None`` passes the frame through, a tensor
or array replaces the image, ``VideoProcessingResult.WITHHELD`` skips the frame, a failing handler passes the
input through; an audio handler returning ``None`` passes the audio through.
"""

from __future__ import annotations

import enum
import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..frames import AudioFrame, VideoFrame
from .base import FrameProcessor

log = logging.getLogger(__name__)

HANDLER_KINDS = ("video", "audio", "model_loader", "param_updater", "stream_start", "stream_stop")


class VideoProcessingResult(enum.Enum):
    """Return ``WITHHELD`` from a video handler to skip the frame on purpose."""

    WITHHELD = "withheld"


async def _maybe_await(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    if inspect.iscoroutinefunction(fn):
        return await fn(*args, **kwargs)
    result = fn(*args, **kwargs)
    return await result if inspect.isawaitable(result) else result


def _mark(kind: str) -> Callable[..., Any]:
    def decorator(func: Callable[..., Any] | None = None, **_options: Any) -> Any:
        def apply(f: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(f)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                return await _maybe_await(f, *args, **kwargs)

            wrapper._trickle_handler = True  # type: ignore[attr-defined]
            wrapper._trickle_handler_type = kind  # type: ignore[attr-defined]
            return wrapper

        # Both @video_handler and @video_handler(...) are accepted.
        return apply(func) if func is not None else apply

    decorator.__name__ = f"{kind}_handler"
    return decorator


video_handler = _mark("video")
audio_handler = _mark("audio")
model_loader = _mark("model_loader")
param_updater = _mark("param_updater")
on_stream_start = _mark("stream_start")
on_stream_stop = _mark("stream_stop")


def discover_handlers(obj: Any) -> dict[str, Callable[..., Any]]:
    """Bound handler methods of ``obj`` by kind (pytrickle ``StreamProcessor.from_handlers``)."""
    found: dict[str, Callable[..., Any]] = {}
    for name in dir(obj):
        if name.startswith("_"):
            continue
        attr = getattr(obj, name, None)
        kind = getattr(attr, "_trickle_handler_type", None)
        if kind is None and attr is not None:
            kind = getattr(inspect.unwrap(getattr(attr, "__func__", attr)), "_trickle_handler_type", None)
        if attr is not None and kind in HANDLER_KINDS and kind not in found:
            found[kind] = attr
    return found


def has_handlers(cls: type) -> bool:
    return any(getattr(getattr(cls, n, None), "_trickle_handler_type", None) for n in dir(cls) if not n.startswith("_"))


class CallbackProcessor(FrameProcessor):
    """A ``FrameProcessor`` made of pytrickle-style callbacks."""

    def __init__(
        self,
        video_processor: Callable[..., Any] | None = None,
        audio_processor: Callable[..., Any] | None = None,
        model_loader: Callable[..., Any] | None = None,
        param_updater: Callable[..., Any] | None = None,
        on_stream_start: Callable[..., Any] | None = None,
        on_stream_stop: Callable[..., Any] | None = None,
        name: str = "stream-processor",
    ) -> None:
        super().__init__()
        self.video_processor = video_processor
        self.audio_processor = audio_processor
        self.model_loader = model_loader
        self.param_updater = param_updater
        self.on_stream_start_callback = on_stream_start
        self.on_stream_stop_callback = on_stream_stop
        self.name = name

    @classmethod
    def from_handlers(cls, obj: Any, name: str = "stream-processor") -> CallbackProcessor:
        h = discover_handlers(obj)
        return cls(
            video_processor=h.get("video"),
            audio_processor=h.get("audio"),
            model_loader=h.get("model_loader"),
            param_updater=h.get("param_updater"),
            on_stream_start=h.get("stream_start"),
            on_stream_stop=h.get("stream_stop"),
            name=name,
        )

    async def load_model(self, **kwargs: Any) -> None:
        if self.model_loader is not None:
            await _maybe_await(self.model_loader, **kwargs)

    async def process_video_async(self, frame: VideoFrame) -> VideoFrame | None:
        if self.video_processor is None:
            return frame
        try:
            result = await _maybe_await(self.video_processor, frame)
        except Exception:
            log.exception("video handler failed; passing the frame through")
            return frame
        if result is VideoProcessingResult.WITHHELD or getattr(result, "value", None) == "withheld":
            return None
        if result is None:
            return frame
        if isinstance(result, torch.Tensor):
            return frame.replace_tensor(result)
        if isinstance(result, np.ndarray):
            return frame.replace_tensor(torch.from_numpy(result))
        return result

    async def process_audio_async(self, frame: AudioFrame) -> list[AudioFrame] | None:
        if self.audio_processor is None:
            return [frame]
        try:
            result = await _maybe_await(self.audio_processor, frame)
        except Exception:
            log.exception("audio handler failed; passing the audio through")
            return [frame]
        if result is None:
            return [frame]
        return result if isinstance(result, list) else [result]

    async def update_params(self, params: dict[str, Any]) -> None:
        if not params:
            return
        user_params = dict(params)
        if user_params.pop("load_model", False):  # pytrickle's internal "load now" sentinel
            await self.ensure_model_loaded()
        if self.param_updater is not None and user_params:
            await _maybe_await(self.param_updater, user_params)

    async def on_stream_start(self, params: dict[str, Any]) -> None:
        if self.on_stream_start_callback is not None:
            await _maybe_await(self.on_stream_start_callback, params or {})

    async def on_stream_stop(self) -> None:
        if self.on_stream_stop_callback is not None:
            await _maybe_await(self.on_stream_stop_callback)


__all__ = [
    "CallbackProcessor",
    "VideoProcessingResult",
    "audio_handler",
    "discover_handlers",
    "model_loader",
    "on_stream_start",
    "on_stream_stop",
    "param_updater",
    "video_handler",
]
