"""``cartoon``: a small convolutional network that flattens colours and inks the edges.

It is a real ``torch.nn.Module`` run the way a model-based processor runs (weights on the device, batched
NCHW convolutions under ``inference_mode``), but its weights are built deterministically at load time
(Gaussian smoothing, Sobel edge filters, a fixed colour quantiser), so nothing is downloaded or shipped.
Runs on CUDA when available, otherwise CPU.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..frames import VideoFrame
from .base import FrameProcessor
from .builtin import LUMA_WEIGHTS, _float_param


def _gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


class CartoonNet(nn.Module):
    """smooth (depthwise conv) -> quantise colours -> Sobel edges on luma -> ink edges black."""

    def __init__(self, levels: int = 6, edge_threshold: float = 0.25, smoothing_passes: int = 2) -> None:
        super().__init__()
        self.smooth = nn.Conv2d(3, 3, kernel_size=5, padding=2, groups=3, bias=False, padding_mode="replicate")
        self.edges = nn.Conv2d(1, 2, kernel_size=3, padding=1, bias=False)
        self.luma = nn.Conv2d(3, 1, kernel_size=1, bias=False)
        with torch.no_grad():
            self.smooth.weight.copy_(_gaussian_kernel(5, 1.2).expand(3, 1, 5, 5))
            sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
            self.edges.weight.copy_(torch.stack([sobel_x, sobel_x.T]).unsqueeze(1))
            self.luma.weight.copy_(torch.tensor(LUMA_WEIGHTS).view(1, 3, 1, 1))
        self.levels = levels
        self.edge_threshold = edge_threshold
        self.smoothing_passes = smoothing_passes
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        smooth = x
        for _ in range(self.smoothing_passes):
            smooth = self.smooth(smooth)
        # Soft quantisation keeps gradients of colour but removes fine shading.
        scaled = smooth * self.levels
        quantised = (torch.floor(scaled) + torch.sigmoid((scaled - torch.floor(scaled) - 0.5) * 12)) / self.levels
        gradient = self.edges(self.luma(x))
        magnitude = torch.sqrt(gradient.pow(2).sum(dim=1, keepdim=True) + 1e-6)
        ink = torch.sigmoid((magnitude - self.edge_threshold) * 20)
        return (quantised * (1 - ink)).clamp_(0, 1)


class CartoonProcessor(FrameProcessor):
    """Params: ``levels`` (2..32, colours per channel), ``edge_threshold`` (0.02..2)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model: CartoonNet | None = None

    async def load_model(self, **kwargs: Any) -> None:
        model = CartoonNet().to(self.device).eval()
        if self.device.type == "cuda":
            model = model.half()
        self.model = model
        await self.update_params(kwargs)
        # Warm up so the first real frame does not pay for kernel selection.
        with torch.inference_mode():
            model(torch.zeros(1, 3, 64, 64, device=self.device, dtype=next(model.parameters()).dtype))

    async def update_params(self, params: dict[str, Any]) -> None:
        if self.model is None:
            return
        if "levels" in params:
            self.model.levels = int(_float_param(params, "levels", self.model.levels, 2, 32))
        if "edge_threshold" in params:
            self.model.edge_threshold = _float_param(params, "edge_threshold", self.model.edge_threshold, 0.02, 2.0)

    async def on_stream_start(self, params: dict[str, Any]) -> None:
        await self.update_params(params)

    async def process_video_async(self, frame: VideoFrame) -> VideoFrame:
        assert self.model is not None, "load_model was not called"
        dtype = next(self.model.parameters()).dtype
        with torch.inference_mode():
            x = frame.tensor[..., :3].to(self.device, dtype=dtype).permute(0, 3, 1, 2)
            y = self.model(x).permute(0, 2, 3, 1).float()
        return frame.replace_tensor(y)
