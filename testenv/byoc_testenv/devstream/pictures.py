"""Pictures of frames: one decoded frame, a PNG, an input frame beside its output."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from .mpegts import frame_pts


def decode_frame(segments: Sequence[bytes], pts: int) -> Any:
    """The decoded ``av.VideoFrame`` with this PTS, or None (each segment decoded on its own, as a player
    joining at that segment would)."""
    import av

    for data in segments:
        if pts not in frame_pts(data):
            continue
        with contextlib.suppress(av.error.FFmpegError), av.open(io.BytesIO(data), "r", format="mpegts") as container:
            for frame in container.decode(video=0):
                if frame.pts == pts:
                    return frame
    return None


def write_png(rgb: Any, path: Path) -> None:
    """uint8 (H, W, 3) RGB -> PNG with PyAV's encoder (no imaging library needed)."""
    import av
    import numpy as np

    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
    codec.time_base = Fraction(1, 1)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    packets = list(codec.encode(frame)) + list(codec.encode(None))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(bytes(p) for p in packets))


def side_by_side(input_frame: Any, output_frame: Any, path: Path) -> None:
    """Input (scaled and centre-cropped to the output's size, as the worker does) left, output right."""
    import numpy as np
    from byoc_runtime.media.convert import video_frame_to_rgb

    out = output_frame.to_ndarray(format="rgb24")
    height, width = out.shape[:2]
    left = video_frame_to_rgb(input_frame, width, height, "BILINEAR")
    write_png(np.hstack([left, out]), path)
