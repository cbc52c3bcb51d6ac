"""The stream's audio as whisper hears it: 16 kHz mono float32, with the stream time of its first sample.

Frames are resampled with FFmpeg's resampler (PyAV), which is rebuilt whenever the input's format, layout or
rate changes. A gap in the input's timestamps up to ``MAX_FILL_S`` is filled with silence so the buffer keeps
the stream's clock; a larger jump (a restarted publisher, wrapped timestamps) starts the buffer again there.
"""

from __future__ import annotations

import av
import numpy as np

from ...frames import AudioFrame

SAMPLE_RATE = 16_000  # whisper.audio.SAMPLE_RATE
MAX_FILL_S = 2.0
# Sample rates outside this range are refused before they reach the resampler: 960 samples "at 1 Hz" would be
# resampled to 15 million.
MIN_RATE, MAX_RATE = 1_000, 384_000


class AudioRefused(ValueError):
    """An audio frame the resampler cannot take; the message says what it was."""


class AudioBuffer:
    def __init__(self) -> None:
        self.start: float | None = None  # stream time (s) of samples[0]
        self.samples = np.zeros(0, np.float32)
        self._resampler: av.AudioResampler | None = None
        self._source: tuple[str, str, int] | None = None

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    @property
    def end(self) -> float | None:
        return None if self.start is None else self.start + self.seconds

    def push(self, frame: AudioFrame) -> None:
        """Resample ``frame`` onto the end of the buffer. Raises ``AudioRefused``."""
        chunk = self._resample(frame)
        t = frame.time
        end = self.end
        if self.start is None or end is None or abs(t - end) > MAX_FILL_S:
            self.start, self.samples = t, chunk
            return
        gap = round((t - end) * SAMPLE_RATE)
        parts = [self.samples, np.zeros(gap, np.float32), chunk] if gap > 0 else [self.samples, chunk]
        self.samples = np.concatenate(parts)

    def drop_until(self, t: float) -> None:
        """Forget the audio before stream time ``t``."""
        if self.start is None or t <= self.start:
            return
        cut = min(len(self.samples), round((t - self.start) * SAMPLE_RATE))
        self.samples = self.samples[cut:]
        self.start += cut / SAMPLE_RATE

    def _resample(self, frame: AudioFrame) -> np.ndarray:
        source = (frame.format, frame.layout, frame.rate)
        described = f"{frame.format} {frame.layout} at {frame.rate} Hz"
        if not MIN_RATE <= frame.rate <= MAX_RATE:
            raise AudioRefused(f"audio refused: {described} (sample rates {MIN_RATE}..{MAX_RATE} Hz are taken)")
        if self._resampler is None or source != self._source:
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            self._source = source
        try:
            av_frame = frame.to_av_frame()
            av_frame.pts = None  # the buffer keeps the clock; the resampler only counts samples
            out = self._resampler.resample(av_frame)
        except (ValueError, TypeError, OverflowError, av.error.FFmpegError) as exc:
            self._resampler = None  # a refused frame may leave it half set up
            raise AudioRefused(f"audio refused by the resampler: {described}: {exc}") from exc
        if not out:
            return np.zeros(0, np.float32)
        return np.concatenate([o.to_ndarray().reshape(-1) for o in out]).astype(np.float32, copy=False)
