"""``pytrickle.stream_processor`` stand-in: ``StreamProcessor`` built from async callbacks or decorated
handlers (v0.1.6 ``stream_processor.py``), served by this runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from byoc_runtime.processors.handlers import CallbackProcessor, VideoProcessingResult

from .server import StreamServer


class StreamProcessor:
    def __init__(
        self,
        video_processor: Callable[..., Any] | None = None,
        audio_processor: Callable[..., Any] | None = None,
        model_loader: Callable[..., Any] | None = None,
        param_updater: Callable[..., Any] | None = None,
        on_stream_start: Callable[..., Any] | None = None,
        on_stream_stop: Callable[..., Any] | None = None,
        send_data_interval: float | None = 0.333,
        name: str = "stream-processor",
        port: int = 8000,
        **server_kwargs: Any,
    ) -> None:
        self.name = name
        self.port = port
        self._frame_processor = CallbackProcessor(
            video_processor=video_processor,
            audio_processor=audio_processor,
            model_loader=model_loader,
            param_updater=param_updater,
            on_stream_start=on_stream_start,
            on_stream_stop=on_stream_stop,
            name=name,
        )
        self.server = StreamServer(frame_processor=self._frame_processor, port=port, **server_kwargs)

    @classmethod
    def from_handlers(cls, handler_instance: Any, *, name: str = "stream-processor", port: int = 8000, **kwargs: Any):
        processor = cls(name=name, port=port, **kwargs)
        callbacks = CallbackProcessor.from_handlers(handler_instance, name=name)
        processor._frame_processor.__dict__.update(
            {k: v for k, v in vars(callbacks).items() if k.endswith(("_processor", "_loader", "_updater", "_callback"))}
        )
        return processor

    async def send_data(self, data: str) -> bool:
        return await self._frame_processor.send_data(data)

    async def run_forever(self) -> None:
        await self.server.run_forever()

    def run(self) -> None:
        asyncio.run(self.run_forever())


__all__ = ["StreamProcessor", "VideoProcessingResult"]
