"""``pytrickle.frame_overlay`` stand-in: the "loading" overlay shown while a processor withholds frames
(v0.1.8 ``frame_overlay.py``: ``OverlayMode``, ``OverlayConfig``, ``OverlayController``, ``build_frame_overlay``).

The controller turns the overlay on when the processor returned no frame for ``auto_timeout_seconds``, or at
once while a manual loading state is set (``StreamProcessor.set_loading_overlay(True)``; the processor is then
not called at all), and off again after ``frame_count_to_disable`` frames in a row came back. Before the
timeout a withheld frame is replaced by the input frame. ``PASSTHROUGH`` mode or ``enabled=False`` turns all
of this off: a withheld frame is then simply not sent.

The overlay image is drawn here with numpy and a built-in 5x7 bitmap font (upstream draws with OpenCV, which
this runtime does not ship): a dark frame, a card with the message and a progress bar, animated when
``progress`` is None.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

import numpy as np
import torch

from byoc_runtime.frames import VideoFrame

# 5x7 glyphs, one hex byte per row, bit 4 = leftmost column. Lowercase is drawn as uppercase; other
# characters as "?".
_GLYPHS: dict[str, str] = {
    " ": "00000000000000",
    "A": "0E11111F111111",
    "B": "1E11111E11111E",
    "C": "0E11101010110E",
    "D": "1C12111111121C",
    "E": "1F10101E10101F",
    "F": "1F10101E101010",
    "G": "0E11101711110F",
    "H": "1111111F111111",
    "I": "0E04040404040E",
    "J": "0702020202120C",
    "K": "11121418141211",
    "L": "1010101010101F",
    "M": "111B1515111111",
    "N": "11111915131111",
    "O": "0E11111111110E",
    "P": "1E11111E101010",
    "Q": "0E11111115120D",
    "R": "1E11111E141211",
    "S": "0F10100E01011E",
    "T": "1F040404040404",
    "U": "1111111111110E",
    "V": "11111111110A04",
    "W": "1111111515150A",
    "X": "11110A040A1111",
    "Y": "1111110A040404",
    "Z": "1F01020408101F",
    "0": "0E11131519110E",
    "1": "040C040404040E",
    "2": "0E11010204081F",
    "3": "1F02040201110E",
    "4": "02060A121F0202",
    "5": "1F101E0101110E",
    "6": "0608101E11110E",
    "7": "1F010204080808",
    "8": "0E11110E11110E",
    "9": "0E11110F01020C",
    ".": "00000000000C0C",
    ",": "000000000C0408",
    ":": "000C0C000C0C00",
    "!": "04040404040004",
    "?": "0E110102040004",
    "-": "0000001F000000",
    "'": "0C040800000000",
    "%": "18190204081303",
    "/": "00010204081000",
    "(": "02040808080402",
    ")": "08040202020408",
    "+": "0004041F040400",
    "=": "00001F001F0000",
}

_BACKGROUND = (30, 30, 30)
_CARD = (20, 20, 20)
_BORDER = (60, 60, 60)
_TEXT = (200, 200, 200)
_TRACK = (40, 40, 40)
_BAR = (100, 150, 255)


def _glyph(char: str) -> np.ndarray:
    rows = _GLYPHS.get(char.upper(), _GLYPHS["?"])
    bits = [int(rows[i : i + 2], 16) for i in range(0, 14, 2)]
    return np.array([[(row >> (4 - col)) & 1 for col in range(5)] for row in bits], dtype=bool)


def _text_mask(text: str, scale: int) -> np.ndarray:
    """A boolean (7*scale, 6*len*scale) mask of ``text`` (one blank column between glyphs)."""
    if not text:
        return np.zeros((7 * scale, 0), dtype=bool)
    cells = [np.pad(_glyph(c), ((0, 0), (0, 1))) for c in text]
    mask = np.concatenate(cells, axis=1)[:, :-1]
    return mask.repeat(scale, axis=0).repeat(scale, axis=1)


def render_overlay(width: int, height: int, message: str, frame_counter: int, progress: float | None) -> np.ndarray:
    """The overlay as a (height, width, 3) uint8 RGB image."""
    if width <= 0 or height <= 0:
        raise ValueError(f"width and height must be positive, got {width}x{height}")
    if progress is not None and not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress must be between 0.0 and 1.0, got {progress}")
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = _BACKGROUND
    card_w, card_h = max(1, min(400, width - 40)), max(1, min(200, height - 40))
    x0, y0 = (width - card_w) // 2, (height - card_h) // 2
    image[y0 : y0 + card_h, x0 : x0 + card_w] = _BORDER
    image[y0 + 2 : y0 + card_h - 2, x0 + 2 : x0 + card_w - 2] = _CARD
    cy = height // 2
    scale = max(1, min(4, (card_w - 20) // max(1, 6 * len(message)), card_h // 40))
    mask = _text_mask(message, scale)[:, : max(0, card_w - 8)]
    if mask.size:
        ty, tx = max(0, cy - mask.shape[0]), max(0, (width - mask.shape[1]) // 2)
        region = image[ty : ty + mask.shape[0], tx : tx + mask.shape[1]]
        region[mask[: region.shape[0], : region.shape[1]]] = _TEXT
    bar_w, bar_h = max(1, card_w - 60), max(1, min(6, card_h // 20))
    bx, by = (width - bar_w) // 2, min(height - bar_h, cy + max(4, card_h // 5))
    image[by : by + bar_h, bx : bx + bar_w] = _TRACK
    if progress is None or progress <= 0:
        phase = (frame_counter % 60) / 30.0  # back and forth every two seconds at 30 fps
        filled = 1.0 - abs(1.0 - phase)
    else:
        filled = progress
    image[by : by + bar_h, bx : bx + int(bar_w * filled)] = _BAR
    return image


def _size_and_layout(tensor: torch.Tensor) -> tuple[int, int, bool]:
    """(height, width, channels_first) of a (1,)H,W,C or (1,)C,H,W image tensor."""
    if tensor.dim() not in (3, 4):
        raise ValueError(f"unexpected tensor shape {tuple(tensor.shape)}")
    shape = tensor.shape[-3:]
    if shape[0] in (1, 3) and shape[-1] not in (1, 3):
        return int(shape[1]), int(shape[2]), True
    return int(shape[0]), int(shape[1]), False


def build_frame_overlay(
    original_frame: VideoFrame, message: str = "Loading...", frame_counter: int = 0, progress: float | None = None
) -> VideoFrame:
    """An overlay frame the size, layout, device and timing of ``original_frame``."""
    tensor = original_frame.tensor
    height, width, channels_first = _size_and_layout(tensor)
    image = torch.from_numpy(render_overlay(width, height, message, frame_counter, progress))
    out = image.to(device=tensor.device, dtype=torch.float32) / 255.0
    if channels_first:
        out = out.permute(2, 0, 1)
    if tensor.dim() == 4:
        out = out.unsqueeze(0)
    return original_frame.replace_tensor(out)


class OverlayMode(enum.Enum):
    PROGRESSBAR = "progressbar"  # show the loading overlay
    PASSTHROUGH = "passthrough"  # never show it


@dataclass
class OverlayConfig:
    mode: OverlayMode = OverlayMode.PROGRESSBAR
    message: str = "Loading..."
    progress: float | None = None  # 0..1, None: animated
    enabled: bool = True
    auto_timeout_seconds: float | None = 1.5  # no output this long: overlay on (None: only manually)
    frame_count_to_disable: int = 1  # frames in a row from the processor before it goes off again

    def is_overlay_mode(self) -> bool:
        return self.mode is OverlayMode.PROGRESSBAR

    def is_passthrough_mode(self) -> bool:
        return self.mode is OverlayMode.PASSTHROUGH


class OverlayController:
    """Per-stream overlay state; the client calls ``update_and_apply`` once per video frame."""

    def __init__(self, overlay_config: OverlayConfig | None) -> None:
        self.overlay_config = overlay_config if overlay_config is not None else OverlayConfig()
        self.reset()

    @property
    def _active_mode(self) -> bool:
        return self.overlay_config.enabled and self.overlay_config.is_overlay_mode()

    def reset(self) -> None:
        self._last_output = time.monotonic()
        self._loading = False
        self._manual = False
        self._frame_counter = 0
        self._received_in_a_row = 0

    def apply_overlay_config(self, config: OverlayConfig | None) -> None:
        self.overlay_config = config if config is not None else OverlayConfig()
        self._frame_counter = 0
        if not self._active_mode:
            self._switch_off()

    def set_manual_loading(self, active: bool) -> None:
        self._loading = self._manual = bool(active)
        self._last_output = time.monotonic()
        if not active:
            self._frame_counter = 0

    def should_skip_processing(self) -> bool:
        """True while a manual loading state is set (and the mode shows overlays): don't call the processor."""
        return self._manual and not self.overlay_config.is_passthrough_mode()

    def update_and_apply(self, original_frame: VideoFrame, processed_frame: VideoFrame | None) -> VideoFrame | None:
        """The frame to send for this input frame: the processed one, the input, an overlay, or None (none)."""
        self._update(processed_frame is not None)
        if not self._active_mode:
            return processed_frame
        if not self._loading:
            return processed_frame if processed_frame is not None else original_frame
        self._frame_counter += 1
        config = self.overlay_config
        return build_frame_overlay(original_frame, config.message, self._frame_counter, config.progress)

    def _update(self, got_frame: bool) -> None:
        if not self._active_mode:
            self._switch_off()
            return
        now = time.monotonic()
        if got_frame:
            self._last_output = now
            self._received_in_a_row += 1
            if self._loading and not self._manual:
                self._loading = self._received_in_a_row < max(1, self.overlay_config.frame_count_to_disable)
            return
        self._received_in_a_row = 0
        timeout = self.overlay_config.auto_timeout_seconds
        if not self._manual and timeout is not None and timeout >= 0 and now - self._last_output >= timeout:
            self._loading = True

    def _switch_off(self) -> None:
        self._loading = self._manual = False
        self._frame_counter = 0
        self._received_in_a_row = 0


__all__ = ["OverlayConfig", "OverlayController", "OverlayMode", "build_frame_overlay"]
