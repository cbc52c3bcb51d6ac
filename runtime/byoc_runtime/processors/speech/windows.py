"""Which audio each transcription sees, and which of its segments are published. Pure (numpy only).

A window is the first ``window_s`` seconds of the buffered audio. Of what whisper makes of it, the segments
that start before the window's last ``overlap_s`` are published; the buffer then drops everything up to the
end of the last published segment, so the next window starts where the captions stopped. Audio is therefore
transcribed once it is committed and never published twice, while speech cut by the window's edge is heard
again whole. A segment at the very start of a window that repeats the previous one word for word (whisper
echoing its prompt across the seam) is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .audio import SAMPLE_RATE, AudioBuffer
from .options import StreamOptions

PROMPT_CHARS = 200  # the tail of the published text given to whisper as context for the next window
SEAM_S = 0.3  # a repeat of the last published segment starting this close to a window's start is an echo
MIN_FINAL_S = 0.3  # shorter trailing audio at a stream's end is not worth an encoder pass


@dataclass(frozen=True, slots=True)
class Segment:
    """Text spoken from ``start`` to ``end`` (seconds on the stream's clock)."""

    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class Window:
    start: float
    samples: np.ndarray  # 16 kHz mono float32

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    @property
    def end(self) -> float:
        return self.start + self.seconds


def _normalised(text: str) -> str:
    """Words only: case and punctuation differ between two hearings of the same speech."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


class Captioner:
    """One stream's transcription state: its audio, what was published, what to transcribe next."""

    def __init__(self, options: StreamOptions) -> None:
        self.options = options
        self.audio = AudioBuffer()
        self.published_text = ""
        self.skipped_s = 0.0  # audio dropped because transcription fell behind (reported by the caller)

    @property
    def prompt(self) -> str:
        return " ".join(self.published_text.split())[-PROMPT_CHARS:].strip()

    def next_window(self) -> Window | None:
        """The audio to transcribe next, once a whole window is buffered."""
        audio, options = self.audio, self.options
        if audio.start is None or audio.seconds < options.window_s:
            return None
        if audio.seconds > options.max_lag_s:
            # Behind real time: keep only the newest window.
            skip = audio.seconds - options.window_s
            self.skipped_s += skip
            audio.drop_until(audio.start + skip)
        assert audio.start is not None
        count = round(options.window_s * SAMPLE_RATE)
        return Window(audio.start, audio.samples[:count].copy())

    def final_window(self) -> Window | None:
        """At the end of the stream: the audio still buffered, shorter than a window (its last words), if any
        worth transcribing."""
        audio = self.audio
        if audio.start is None or audio.seconds < MIN_FINAL_S:
            return None
        return Window(audio.start, audio.samples[: round(self.options.window_s * SAMPLE_RATE)].copy())

    def accept(self, window: Window, segments: list[Segment], final: bool = False) -> list[Segment]:
        """What of ``window``'s segments (in order, stream times) to publish; the buffer moves past them. The
        ``final`` window is heard only once: nothing in it is held back for a next one."""
        horizon = window.end if final else window.end - self.options.overlap_s
        published: list[Segment] = []
        last = _normalised(self.published_text.rsplit("\n", 1)[-1])
        for segment in segments:
            if segment.start >= horizon:
                break  # heard again, with what follows it, in the next window
            if segment.start - window.start < SEAM_S and _normalised(segment.text) == last:
                continue  # the previous segment echoed across the seam, not said again
            published.append(segment)
            last = _normalised(segment.text)
        # Resume after the last published segment; with none (silence, or speech only at the edge), at the horizon.
        resume = published[-1].end if published else horizon
        self.audio.drop_until(resume if resume > window.start else horizon)
        if published:
            text = "\n".join([self.published_text, *(s.text for s in published)])
            self.published_text = text[-4 * PROMPT_CHARS :]
        return published

    def skip(self, window: Window) -> None:
        """Drop ``window``'s audio unpublished (its transcription failed)."""
        self.audio.drop_until(window.end)
