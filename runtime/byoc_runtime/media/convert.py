"""Conversions between decoded video frames, uint8 RGB images and the processor's float tensors.

Measured on the 2-core dev box, 1280x720 yuv420p in, 512x512 out (tests/runtime/bench_pipeline.py):
swscale scaling straight to rgb24 costs ~1.1 ms with FAST_BILINEAR (3.8 ms BILINEAR) against ~6.6 ms for
pytrickle's rgba -> PIL -> crop -> ``np.array().astype()`` -> ``torch.tensor`` path. The crop is a numpy view
(no copy) and the float conversion is a single torch pass (0.15 ms).
"""

from __future__ import annotations

import av
import numpy as np
import torch

from .geometry import ScaleCrop, plan_scale_crop

DEFAULT_INTERPOLATION = "FAST_BILINEAR"


def video_frame_to_rgb(
    frame: av.VideoFrame, width: int, height: int, interpolation: str = DEFAULT_INTERPOLATION
) -> np.ndarray:
    """Scale (keeping aspect) and centre-crop ``frame`` to a ``height`` x ``width`` x 3 uint8 RGB view."""
    plan: ScaleCrop = plan_scale_crop(frame.width, frame.height, width, height)
    rgb = frame.to_ndarray(
        format="rgb24", width=plan.scale_width, height=plan.scale_height, interpolation=interpolation
    )
    if plan.needs_crop:
        rgb = rgb[plan.crop_y : plan.crop_y + height, plan.crop_x : plan.crop_x + width]
    return rgb


def rgb_to_tensor(rgb: np.ndarray, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (1, H, W, 3) in 0..1, on ``device`` (CPU by default)."""
    source = torch.from_numpy(rgb)
    if device is not None and torch.device(device).type != "cpu":
        # Upload the uint8 image (4x fewer bytes than float32) and convert on the device.
        source = source.to(device, non_blocking=True)
    return source.unsqueeze(0).to(torch.float32).mul_(1.0 / 255.0)


def tensor_to_rgb(tensor: torch.Tensor) -> np.ndarray:
    """A processor's output tensor -> uint8 (H, W, 3) RGB.

    Accepts (1, H, W, C) or (H, W, C) with C in 1, 3, 4, float in 0..1 or uint8, on any device, like
    pytrickle ``encoder.py`` does. Grey is expanded to RGB and alpha dropped.
    """
    if tensor.dim() == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"expected batch size 1, got shape {tuple(tensor.shape)}")
        tensor = tensor[0]
    if tensor.dim() != 3 or tensor.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected (H, W, C) with C in 1, 3, 4; got shape {tuple(tensor.shape)}")
    tensor = tensor.detach()
    if tensor.dtype != torch.uint8:
        # Round rather than truncate so a 0..1 -> 0..255 round trip is lossless.
        tensor = tensor.mul(255.0).add_(0.5).clamp_(0.0, 255.0).to(torch.uint8)
    if tensor.shape[2] == 4:
        tensor = tensor[:, :, :3]
    elif tensor.shape[2] == 1:
        tensor = tensor.expand(-1, -1, 3)
    return tensor.cpu().numpy()


def scaled_yuv420p(frame: av.VideoFrame, width: int, height: int, interpolation: str) -> av.VideoFrame:
    """A decoded frame as the encoder takes it (yuv420p at ``width`` x ``height``), without going through RGB."""
    if (frame.width, frame.height) == (width, height) and frame.format.name == "yuv420p":
        return frame
    return frame.reformat(width=width, height=height, format="yuv420p", interpolation=interpolation)


def rgb_to_video_frame(rgb: np.ndarray) -> av.VideoFrame:
    """uint8 (H, W, 3) RGB (any strides) -> rgb24 ``av.VideoFrame``."""
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
