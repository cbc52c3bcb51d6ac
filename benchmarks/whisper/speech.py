"""The benchmark's input: MPEG-TS segments of colour bars and a speech-like signal (voiced "syllables" at 4 a
second in 2 s phrases, 1 s pauses between), so each phrase has a known end time on the stream's clock."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
from byoc_runtime.media.encode import BufferedSink, EncoderSettings, SegmentEncoder, collect_segments
from byoc_runtime.media.testsource import AUDIO_FRAME_SAMPLES, color_bars

RATE = 48_000
PHRASE_S, PAUSE_S = 2.0, 1.0


def speech_like(seconds: float) -> np.ndarray:
    """Mono float32 at 48 kHz: a 130 Hz voice with a few harmonics, syllable-modulated, in phrases."""
    t = np.arange(round(seconds * RATE)) / RATE
    voice = sum(np.sin(2 * np.pi * 130 * k * t) / k for k in range(1, 8))
    syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0, None)
    speaking = (t % (PHRASE_S + PAUSE_S)) < PHRASE_S
    return (0.25 * voice * syllables * speaking).astype(np.float32)


def phrase_ends(seconds: float) -> list[float]:
    period = PHRASE_S + PAUSE_S
    return [k * period + PHRASE_S for k in range(int(seconds // period))]


def segments(seconds: float, width: int = 160, height: int = 120, fps: int = 15) -> list[bytes]:
    sink = BufferedSink()
    encoder = SegmentEncoder(sink, EncoderSettings(gop_seconds=1.0, preset="ultrafast"))
    encoder.expect_audio()
    tb = Fraction(1, 90_000)
    image = color_bars(width, height)
    audio = speech_like(seconds)
    frames = round(seconds * fps)
    next_audio = 0
    for i in range(frames):
        t = i / fps
        while next_audio < len(audio) and next_audio / RATE <= t:
            chunk = audio[next_audio : next_audio + AUDIO_FRAME_SAMPLES]
            frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
            frame.sample_rate = RATE
            encoder.encode_audio(frame, round(next_audio / RATE * 90_000), tb)
            next_audio += AUDIO_FRAME_SAMPLES
        encoder.encode_video(av.VideoFrame.from_ndarray(image, format="rgb24"), round(t * 90_000), tb)
    encoder.close()
    return collect_segments(sink.drain())
