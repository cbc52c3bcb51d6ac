"""A synthetic live source: colour bars with a moving box, a white flash and a beep once a second.

Produces MPEG-TS segments (H.264 + Opus or AAC) exactly as a gateway would publish them into a trickle
channel, for tests, benchmarks and local development (``python -m byoc_runtime.media.testsource``). The
flash and the beep start on the same presentation timestamp, so a consumer can check A/V sync on the
decoded output, not just on the timestamps.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from .encode import BufferedSink, EncoderSettings, SegmentEncoder, collect_segments

BEEP_SECONDS = 0.1
BEEP_HZ = 1000.0
AUDIO_FRAME_SAMPLES = 960  # 20 ms at 48 kHz, what WHIP/Opus ingest delivers


@dataclass(frozen=True, slots=True)
class SourceSpec:
    width: int = 320
    height: int = 240
    fps: int = 30
    seconds: float = 3.0
    segment_seconds: float = 1.0
    audio_codec: str | None = "libopus"  # "aac", "libopus" or None for video only
    video: bool = True
    start_seconds: float = 0.0  # presentation time of the first frame
    flash_every: float = 1.0  # seconds between flash+beep marks


def color_bars(width: int, height: int) -> np.ndarray:
    """Seven saturated vertical bars (uint8 RGB)."""
    colors = np.array(
        [[192, 192, 192], [192, 192, 0], [0, 192, 192], [0, 192, 0], [192, 0, 192], [192, 0, 0], [0, 0, 192]],
        dtype=np.uint8,
    )
    index = (np.arange(width) * len(colors)) // width
    return np.broadcast_to(colors[index][np.newaxis, :, :], (height, width, 3)).copy()


def is_mark(t: float, every: float, fps: int) -> bool:
    """Whether the frame at time ``t`` is a flash frame (the first frame at or after each mark)."""
    phase = t % every
    return phase < 1.0 / fps - 1e-9


def video_frames(spec: SourceSpec) -> Iterator[tuple[np.ndarray, float]]:
    bars = color_bars(spec.width, spec.height)
    box = max(8, min(spec.width, spec.height) // 6)
    for i in range(round(spec.seconds * spec.fps)):
        t = i / spec.fps
        if is_mark(t, spec.flash_every, spec.fps):
            yield np.full((spec.height, spec.width, 3), 255, np.uint8), t
            continue
        image = bars.copy()
        x = int((spec.width - box) * (0.5 + 0.5 * np.sin(2 * np.pi * t / 2)))
        y = int((spec.height - box) * (0.5 + 0.5 * np.cos(2 * np.pi * t / 3)))
        image[y : y + box, x : x + box] = (255, 255, 255)
        yield image, t


def audio_frames(spec: SourceSpec, rate: int = 48_000) -> Iterator[tuple[np.ndarray, float]]:
    """(2, n) float32 planar stereo: silence except a beep starting at each mark."""
    total = round(spec.seconds * rate)
    for start in range(0, total, AUDIO_FRAME_SAMPLES):
        n = np.arange(start, min(start + AUDIO_FRAME_SAMPLES, total))
        t = n / rate
        on = (t % spec.flash_every) < BEEP_SECONDS
        wave = (0.5 * np.sin(2 * np.pi * BEEP_HZ * t) * on).astype(np.float32)
        yield np.stack([wave, wave]), start / rate


def generate_segments(spec: SourceSpec) -> list[bytes]:
    """Render the whole source into MPEG-TS segments of ``segment_seconds`` each."""
    sink = BufferedSink()
    encoder = SegmentEncoder(
        sink,
        EncoderSettings(
            gop_seconds=spec.segment_seconds, audio_codec=spec.audio_codec or "libopus", preset="ultrafast"
        ),
    )
    if spec.audio_codec:
        encoder.expect_audio()
    tb = Fraction(1, 90_000)
    offset = round(spec.start_seconds * 90_000)
    video = video_frames(spec) if spec.video else iter(())
    audio = audio_frames(spec) if spec.audio_codec else iter(())
    next_video = next(video, None)
    next_audio = next(audio, None)
    # Interleave by time, as a live encoder would emit them.
    while next_video is not None or next_audio is not None:
        if next_video is not None and (next_audio is None or next_video[1] <= next_audio[1]):
            image, t = next_video
            encoder.encode_video(av.VideoFrame.from_ndarray(image, format="rgb24"), offset + round(t * 90_000), tb)
            next_video = next(video, None)
        elif next_audio is not None:
            samples, t = next_audio
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
            frame.sample_rate = 48_000
            encoder.encode_audio(frame, offset + round(t * 90_000), tb)
            next_audio = next(audio, None)
    encoder.close()
    return collect_segments(sink.drain())


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic MPEG-TS test stream.")
    parser.add_argument("output", help="file to write (all segments concatenated)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--audio", default="libopus", help="libopus, aac or none")
    args = parser.parse_args()
    spec = SourceSpec(
        width=args.width,
        height=args.height,
        fps=args.fps,
        seconds=args.seconds,
        audio_codec=None if args.audio == "none" else args.audio,
    )
    with open(args.output, "wb") as out:
        for segment in generate_segments(spec):
            out.write(segment)


if __name__ == "__main__":
    main()
