"""Input as a gateway's encoder and muxer make it, for the demux and decode tests and the runtime benchmark's
gateway inputs: x264 (with or without B-frames) at any frame rate and size, AAC or Opus audio, one continuous
FFmpeg MPEG-TS muxer with its default settings (audio frames gathered into PES, PCR on video), cut into segments
that each start with the program tables.

Unlike ``media.testsource`` (the runtime's own encoder: no B-frames, one muxer per segment, a PES per audio
frame) this is what FFmpeg-based ingest sends, and the segments can be cut where a keyframe is not.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from byoc_testenv.devstream.mpegts import split_frames

PACKET = 188
RATE = 48_000


@dataclass(frozen=True, slots=True)
class GatewaySpec:
    width: int = 854
    height: int = 480
    fps: int = 30
    seconds: float = 3.0
    bframes: int = 0  # x264's bframes (b-pyramid at its default, normal)
    audio: str | None = "aac"  # "aac", "libopus" or None
    segment_frames: int = 0  # video frames per segment; 0: one GOP (one second), so segments start on keyframes
    first_segment_frames: int = 0  # shift the cuts: segment 0 has this many frames (0: segment_frames)


@dataclass(frozen=True, slots=True)
class GatewayStream:
    spec: GatewaySpec
    data: bytes  # the whole stream as the muxer wrote it
    segments: tuple[bytes, ...]
    pieces: tuple[tuple[bytes, ...], ...]  # each segment cut at its video frames: one write per frame, as live

    @property
    def frames(self) -> int:
        return sum(len(p) for p in self.pieces)


@functools.cache
def _background(width: int, height: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x % 256, (y + x // 3) % 256, ((x + y) // 4) % 256], axis=-1).astype(np.uint8)


def _picture(spec: GatewaySpec, i: int) -> np.ndarray:
    """A panning gradient with a moving box: cheap to make and to code, with motion for B-frames to predict."""
    image = np.roll(_background(spec.width, spec.height), 4 * i, axis=1)
    bx, by = (13 * i) % (spec.width - 40), (7 * i) % (spec.height - 40)
    image[by : by + 40, bx : bx + 40] = 255
    return image


def _encode(spec: GatewaySpec) -> bytes:
    buf = io.BytesIO()
    # max_delay as the ffmpeg command line sets it (0.7 s): audio frames are gathered into PES of up to 2930 bytes.
    with av.open(buf, "w", format="mpegts", options={"max_delay": "700000"}) as out:
        video = out.add_stream("libx264", rate=spec.fps)
        video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
        params = f"keyint={spec.fps}:min-keyint={spec.fps}:scenecut=0:bframes={spec.bframes}"
        video.codec_context.options = {"preset": "superfast", "x264-params": params}
        audio = out.add_stream(spec.audio, rate=RATE, layout="stereo") if spec.audio else None
        if audio is not None and not isinstance(audio, av.AudioStream):
            raise ValueError(f"{spec.audio} is not an audio encoder")
        audio_at = 0  # samples
        frame_samples = 1024 if spec.audio == "aac" else 960
        for i in range(round(spec.seconds * spec.fps)):
            frame = av.VideoFrame.from_ndarray(_picture(spec, i), format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, spec.fps)
            out.mux(video.encode(frame))
            while audio is not None and audio_at < (i + 1) * RATE // spec.fps:
                t = (audio_at + np.arange(frame_samples)) / RATE
                wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
                sound = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
                sound.sample_rate, sound.pts, sound.time_base = RATE, audio_at, Fraction(1, RATE)
                out.mux(audio.encode(sound))
                audio_at += frame_samples
        out.mux(video.encode(None))
        if audio is not None:
            out.mux(audio.encode(None))
    return buf.getvalue()


def _video_starts(data: bytes) -> tuple[list[int], bytes]:
    """Offsets of the TS packets that start a video PES (FFmpeg says which PID is video), and the tables (SDT,
    PAT, PMT) the muxer wrote before the first one."""
    with av.open(io.BytesIO(data), format="mpegts") as probe:
        video_pid = probe.streams.video[0].id
    starts = [
        i
        for i in range(0, len(data), PACKET)
        if data[i + 1] & 0x40 and ((data[i + 1] & 0x1F) << 8) | data[i + 2] == video_pid
    ]
    return starts, data[: starts[0]]


@functools.cache
def gateway_stream(spec: GatewaySpec) -> GatewayStream:
    data = _encode(spec)
    starts, tables = _video_starts(data)
    per = spec.segment_frames or spec.fps
    cuts = list(range(spec.first_segment_frames or per, len(starts), per))
    bounds = [0] + [starts[k] for k in cuts] + [len(data)]
    segments = tuple(
        (tables if n else b"") + data[bounds[n] : bounds[n + 1]] for n in range(len(bounds) - 1)
    )  # each starts with PAT + PMT (the first one has them already)
    pieces = tuple(tuple(p.data for p in split_frames(s)) for s in segments)
    return GatewayStream(spec, data, segments, pieces)
