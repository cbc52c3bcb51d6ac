"""Built-in effects: ``passthrough``, ``grayscale`` and ``green-tint`` (the BYOC CPU tutorial's processors).

Each works on the frame's tensor where it lies (CPU or GPU) and returns a new tensor, leaving the input intact.
"""

from __future__ import annotations

from typing import Any

import torch

from ..frames import VideoFrame
from .base import FrameProcessor

# ITU-R BT.601 luma weights, as pytrickle's grayscale example uses.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def _float_param(params: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    try:
        value = float(params.get(key, default))
    except (TypeError, ValueError):
        return default
    return min(high, max(low, value))


class PassthroughProcessor(FrameProcessor):
    """Returns every frame untouched (the runtime then skips the float -> uint8 conversion entirely)."""

    async def process_video_async(self, frame: VideoFrame) -> VideoFrame:
        return frame


class GrayscaleProcessor(FrameProcessor):
    """Luma only; ``strength`` (0..1, default 1) blends between the original and full grey."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.strength = 1.0
        self._weights: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    async def update_params(self, params: dict[str, Any]) -> None:
        self.strength = _float_param(params, "strength", self.strength, 0.0, 1.0)

    async def on_stream_start(self, params: dict[str, Any]) -> None:
        await self.update_params(params)

    def _luma_weights(self, tensor: torch.Tensor) -> torch.Tensor:
        key = (tensor.device, tensor.dtype)
        if key not in self._weights:
            self._weights[key] = torch.tensor(LUMA_WEIGHTS, device=tensor.device, dtype=tensor.dtype)
        return self._weights[key]

    async def process_video_async(self, frame: VideoFrame) -> VideoFrame:
        tensor = frame.tensor
        luma = torch.matmul(tensor[..., :3], self._luma_weights(tensor)).unsqueeze(-1)
        if self.strength >= 1.0:
            return frame.replace_tensor(luma.expand_as(tensor[..., :3]))
        return frame.replace_tensor(torch.lerp(tensor[..., :3], luma.expand_as(tensor[..., :3]), self.strength))


class GreenTintProcessor(FrameProcessor):
    """Blends every pixel towards green; ``intensity`` 0..1 (default 0.3)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.intensity = 0.3

    async def update_params(self, params: dict[str, Any]) -> None:
        self.intensity = _float_param(params, "intensity", self.intensity, 0.0, 1.0)

    async def on_stream_start(self, params: dict[str, Any]) -> None:
        await self.update_params(params)

    async def process_video_async(self, frame: VideoFrame) -> VideoFrame:
        tensor = frame.tensor[..., :3]
        tinted = tensor * (1.0 - self.intensity)
        tinted[..., 1] += self.intensity
        return frame.replace_tensor(tinted)
