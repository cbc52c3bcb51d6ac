"""The benchmark's input: camera-like video (a panned multi-scale texture with sensor grain and a moving bright
box) in H.264 without B-frames, plus the runtime test source's Opus beeps, in 1 s MPEG-TS segments.

The runtime's own test pattern (flat colour bars) is so cheap to code that the floor would run at ~1000 fps at
512x512 and every per-frame cost outside the codecs would look huge; with this content the bitrate (~0.7 Mbit/s
at 512x512, ~1.6 Mbit/s at 1280x720) and the decode/encode work are those of a webcam. Rendered once per size
and cached on disk (keyed by this file and the encoder's source).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from byoc_runtime.media import encode, testsource
from byoc_testenv.devstream.mpegts import FramePiece, split_frames

FPS = 30
SEGMENT_SECONDS = 1.0
PTS_HZ = 90_000


@dataclass(frozen=True)
class Clip:
    width: int
    height: int
    segments: list[bytes]
    pieces: list[list[FramePiece]]  # each segment cut at its video frames, for real-time publishing

    @property
    def name(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def frames(self) -> int:
        return sum(len(p) for p in self.pieces)

    @property
    def bitrate(self) -> float:
        """Bits per second of the whole stream."""
        return 8 * sum(len(s) for s in self.segments) / (len(self.segments) * SEGMENT_SECONDS)

    def frames_before(self, segment: int) -> int:
        """Video frames in the segments before ``segment``."""
        return sum(len(p) for p in self.pieces[:segment])


def texture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Value noise summed over octaves from 4 cells to ~3 pixels per cell: detail at every scale, as in a scene."""
    image = np.zeros((height, width, 3), np.float32)
    cells, amplitude = 4, 1.0
    while cells <= width // 3:
        grid = rng.random((cells + 1, cells + 1, 3), dtype=np.float32)
        ys, xs = np.linspace(0, cells, height, dtype=np.float32), np.linspace(0, cells, width, dtype=np.float32)
        y0, x0 = ys.astype(int).clip(0, cells - 1), xs.astype(int).clip(0, cells - 1)
        fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
        top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
        bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
        image += amplitude * (top * (1 - fy) + bottom * fy)
        cells, amplitude = cells * 2, amplitude * 0.7
    image -= image.min()
    image /= image.max()
    return (image * 255).astype(np.uint8)


def video_frames(width: int, height: int, seconds: int) -> Iterator[tuple[np.ndarray, float]]:
    rng = np.random.default_rng(1)
    scene = texture(height * 2, width * 2, rng)
    grain = rng.integers(-4, 5, size=(8, height, width, 3), dtype=np.int16)
    box = min(width, height) // 5
    for i in range(seconds * FPS):
        x = int(width * (0.5 + 0.5 * np.sin(i / 40)))  # the camera pans over the scene
        y = int(height * (0.5 + 0.5 * np.cos(i / 30)))
        frame = scene[y : y + height, x : x + width].astype(np.int16) + grain[i % len(grain)]
        bx, by = int((width - box) * (0.5 + 0.5 * np.sin(i / 15))), int((height - box) * (0.5 + 0.5 * np.cos(i / 11)))
        frame[by : by + box, bx : bx + box] = 240
        yield frame.clip(0, 255).astype(np.uint8), i / FPS


def render(width: int, height: int, seconds: int, audio_track: bool = True) -> list[bytes]:
    """Encode the clip as a gateway would publish it: 1 s GOPs, one MPEG-TS segment per GOP."""
    sink = encode.BufferedSink()
    encoder = encode.SegmentEncoder(sink, encode.EncoderSettings(gop_seconds=SEGMENT_SECONDS, preset="ultrafast"))
    if audio_track:
        encoder.expect_audio()
    tb = Fraction(1, PTS_HZ)
    video = video_frames(width, height, seconds)
    audio = testsource.audio_frames(testsource.SourceSpec(seconds=seconds)) if audio_track else iter(())
    next_video, next_audio = next(video, None), next(audio, None)
    while next_video is not None or next_audio is not None:  # interleaved by time, as a live encoder emits
        if next_audio is None or (next_video is not None and next_video[1] <= next_audio[1]):
            image, t = next_video
            encoder.encode_video(av.VideoFrame.from_ndarray(image, format="rgb24"), round(t * PTS_HZ), tb)
            next_video = next(video, None)
        else:
            samples, t = next_audio
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
            frame.sample_rate = 48_000
            encoder.encode_audio(frame, round(t * PTS_HZ), tb)
            next_audio = next(audio, None)
    encoder.close()
    return encode.collect_segments(sink.drain())


def _key(width: int, height: int, seconds: int, audio_track: bool) -> str:
    code = Path(__file__).read_bytes() + Path(encode.__file__).read_bytes() + Path(testsource.__file__).read_bytes()
    return hashlib.sha256(code + f"{width}x{height}x{seconds}x{audio_track}".encode()).hexdigest()[:12]


def load_clip(width: int, height: int, seconds: int, cache_dir: Path, audio_track: bool = True) -> Clip:
    """``seconds`` of the clip at this size (with or without its audio track), from the cache or rendered now."""
    kind = "" if audio_track else "-video-only"
    stem = cache_dir / f"clip-{width}x{height}-{seconds}s{kind}-{_key(width, height, seconds, audio_track)}"
    data_path, index_path = stem.with_suffix(".ts"), stem.with_suffix(".json")
    if data_path.exists() and index_path.exists():
        data, sizes = data_path.read_bytes(), json.loads(index_path.read_text())
        segments, offset = [], 0
        for size in sizes:
            segments.append(data[offset : offset + size])
            offset += size
    else:
        segments = render(width, height, seconds, audio_track)
        cache_dir.mkdir(parents=True, exist_ok=True)
        data_path.write_bytes(b"".join(segments))
        index_path.write_text(json.dumps([len(s) for s in segments]))
    return Clip(width, height, segments, [split_frames(s) for s in segments])
