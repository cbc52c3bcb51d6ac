"""The audio encoder the encode lane runs on its own thread: its sample clock and its packets' timestamps."""

from __future__ import annotations

import itertools
from fractions import Fraction

import av
import numpy as np
from byoc_runtime.media.audio_encode import AudioEncoder

TB = Fraction(1, 90_000)
FRAME_TICKS = 1800  # 20 ms
PRIMING = 312 * 90_000 // 48_000


def _frame(samples: int = 960) -> av.AudioFrame:
    t = np.arange(samples) / 48_000
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
    frame.sample_rate = 48_000
    return frame


def _encode(encoder: AudioEncoder, start: int, count: int) -> list[int]:
    return [p.pts for i in range(count) for p in encoder.encode(_frame(), start + i * FRAME_TICKS, TB)]


def test_packets_carry_the_input_clock_from_the_first_frame_on_in_20_ms_steps() -> None:
    encoder = AudioEncoder()
    assert encoder.description is None
    description = encoder.open()
    assert (description.name, description.channels) == ("opus", 2) and encoder.description == description
    pts = _encode(encoder, 900_000, 50) + [p.pts for p in encoder.flush()]
    # Opus stamps its packets 312 samples (its priming) ahead of the samples they carry.
    assert pts[0] == 900_000 - PRIMING and all(b - a == FRAME_TICKS for a, b in itertools.pairwise(pts))
    assert pts[-1] >= 900_000 + 48 * FRAME_TICKS  # the codec's held samples come out with the flush


def test_a_jump_restarts_the_clock_there_and_a_frame_far_behind_it_is_dropped() -> None:
    encoder = AudioEncoder()
    before = _encode(encoder, 0, 20)
    after = _encode(encoder, 90_000 * 10, 20)  # 10 s later: a discontinuity, not 10 s of silence
    # The packet that straddles the jump (the last 312 samples before it) keeps the earlier clock; the next one
    # is the first that starts after the jump.
    resumed = [pts for pts in after if pts >= 90_000]
    assert resumed[0] == 90_000 * 10 + FRAME_TICKS - PRIMING and len(resumed) == 19
    assert [pts for pts in after if pts < 90_000] == [max(before) + FRAME_TICKS]
    assert encoder.encode(_frame(), 90_000 * 5, TB) == [] and encoder.dropped == 1


def test_after_the_flush_nothing_more_is_taken_or_flushed() -> None:
    encoder = AudioEncoder()
    _encode(encoder, 0, 10)
    assert encoder.flush()
    assert encoder.flush() == [] and encoder.encode(_frame(), 10 * FRAME_TICKS, TB) == []
