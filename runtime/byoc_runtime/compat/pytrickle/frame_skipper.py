"""``pytrickle.frame_skipper`` stand-in: ``FrameSkipConfig`` and the adaptive skipper (v0.1.8 ``frame_skipper.py``).

The skipper measures the rate frames arrive at (``fps_meter``'s ingress video rate) and, when a ``target_fps``
below it is set, lets through one frame in ``round(ingress / target)``; with ``target_fps=None`` the target is
the ingress rate itself, so nothing is skipped. The interval is re-evaluated at most every
``adaptation_cooldown`` seconds. ``max_queue_size`` / ``max_cleanup_frames`` bound a backlog in
``process_video_queue``; on this runtime the session's drop-oldest input queue already bounds it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from dataclasses import dataclass
from typing import Any

from byoc_runtime.frames import VideoFrame

from .fps_meter import FPSMeter

log = logging.getLogger(__name__)


class FrameProcessingResult(enum.Enum):
    SKIPPED = "skipped"


FrameResult = VideoFrame | FrameProcessingResult | None


@dataclass
class FrameSkipConfig:
    target_fps: float | None = None  # None: follow the ingress rate (no skipping)
    adaptation_cooldown: float = 0.5
    max_queue_size: int = 15
    max_cleanup_frames: int = 50


class AdaptiveFrameSkipper:
    def __init__(self, config: FrameSkipConfig, fps_meter: FPSMeter) -> None:
        self.config = config
        self.fps_meter = fps_meter
        self.frame_counter = 0
        self.skip_interval = 1
        self.last_adaptation_time = time.monotonic()

    def admit(self, frame: Any) -> Any:
        """``frame`` if it is to be processed, else ``FrameProcessingResult.SKIPPED``."""
        self.frame_counter += 1
        self._adapt()
        if self.skip_interval > 1 and self.frame_counter % self.skip_interval != 1:
            return FrameProcessingResult.SKIPPED
        return frame

    async def process_video_queue(
        self,
        video_queue: asyncio.Queue[Any],
        timeout: float = 5,  # noqa: ASYNC109 (pytrickle's signature)
    ) -> FrameResult:
        """The next frame of ``video_queue`` to process, ``SKIPPED``, or None (the shutdown sentinel).
        A backlog over ``max_queue_size`` is trimmed first; ``TimeoutError`` when nothing arrives in time."""
        backlog = video_queue.qsize() - self.config.max_queue_size
        for _ in range(min(max(backlog, 0), self.config.max_cleanup_frames)):
            if video_queue.get_nowait() is None:
                video_queue.put_nowait(None)  # keep the sentinel for the consumer
                break
        frame = await asyncio.wait_for(video_queue.get(), timeout)
        return None if frame is None else self.admit(frame)

    def _adapt(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_adaptation_time < self.config.adaptation_cooldown:
            return
        ingress = self.fps_meter.get_ingress_video_fps()
        if ingress < 1.0:
            return  # not enough samples yet
        target = self.config.target_fps or ingress
        interval = 1 if ingress <= target else max(1, round(ingress / target))
        if interval != self.skip_interval:
            log.debug("frame skipping: %.1f fps in, target %.1f: keep 1 in %d", ingress, target, interval)
            self.skip_interval = interval
        self.last_adaptation_time = now

    def reset(self) -> None:
        self.frame_counter = 0
        self.skip_interval = 1

    def set_target_fps(self, target_fps: float | None) -> None:
        """Change the target (None: follow the ingress rate) and re-evaluate at once."""
        if target_fps is not None and target_fps <= 0:
            log.warning("invalid target fps %s; keeping %s", target_fps, self.config.target_fps)
            return
        self.config.target_fps = target_fps
        self._adapt(force=True)


__all__ = ["AdaptiveFrameSkipper", "FrameProcessingResult", "FrameResult", "FrameSkipConfig"]
