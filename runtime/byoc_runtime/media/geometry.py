"""Scale-and-crop math for fitting input video to the processor's requested size.

Follows pytrickle ``decoder.py`` (v0.1.6): scale keeping the aspect ratio so the frame covers the target,
with the scaled side rounded to an even number, then crop the centre.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ScaleCrop:
    """Scale the source to ``scale_width`` x ``scale_height``, then take the ``width`` x ``height`` window at
    (``crop_x``, ``crop_y``)."""

    scale_width: int
    scale_height: int
    crop_x: int
    crop_y: int
    width: int
    height: int

    @property
    def needs_crop(self) -> bool:
        return (self.scale_width, self.scale_height) != (self.width, self.height)


def _even_cover(length: float, minimum: int) -> int:
    # Even so chroma planes of 4:2:0 frames stay aligned; never below the target so the crop fits.
    return max(minimum, int(length / 2) * 2)


def plan_scale_crop(src_width: int, src_height: int, width: int, height: int) -> ScaleCrop:
    """Plan how to turn a ``src_width`` x ``src_height`` frame into ``width`` x ``height``."""
    if src_width <= 0 or src_height <= 0 or width <= 0 or height <= 0:
        raise ValueError(f"invalid sizes: source {src_width}x{src_height}, target {width}x{height}")
    if (src_width, src_height) == (width, height):
        return ScaleCrop(width, height, 0, 0, width, height)
    if width * src_height < src_width * height:
        # Source is wider than the target: match heights, crop the sides.
        scale_height = height
        scale_width = _even_cover(height * src_width / src_height, width)
    else:
        scale_width = width
        scale_height = _even_cover(width * src_height / src_width, height)
    crop_x = scale_width // 2 - width // 2
    crop_y = scale_height // 2 - height // 2
    return ScaleCrop(scale_width, scale_height, crop_x, crop_y, width, height)
