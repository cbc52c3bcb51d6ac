"""Audio frames -> encoded packets (Opus by default), apart from the segment muxer so that it can run on a
thread of its own: PyAV holds the GIL through libopus and the resampler, ~0.2 ms per 20 ms frame, which in the
encode thread delayed every video frame behind it (a quarter of that thread's time in a closed-loop run).

The sample clock is the encoder's own: each packet is stamped where the samples before it end, restarted at a
frame whose timestamp is off that clock by more than 100 ms (a discontinuity in the input); a frame behind what
was already encoded is dropped. Timestamps are the input's (1/90000); the segment muxer maps them to output time.

Thread-safe: ``open`` may be called from the muxer's thread while ``encode`` runs on the audio thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from fractions import Fraction

import av

from .mpegts import TIME_BASE, rescale
from .tsmux import AudioCodec

AUDIO_RATE = 48_000
AUDIO_TIME_BASE = Fraction(1, AUDIO_RATE)
_RESYNC_SAMPLES = AUDIO_RATE // 10  # 100 ms off the sample clock: a discontinuity


@dataclass(frozen=True, slots=True)
class EncodedAudio:
    """One encoded packet and its presentation time in the input's clock (1/90000)."""

    data: bytes
    pts: int


class AudioEncoder:
    def __init__(self, codec: str = "libopus", bitrate: int = 96_000, layout: str = "stereo") -> None:
        self._codec, self._bitrate, self._layout = codec, bitrate, layout
        self._lock = threading.Lock()
        self._ctx: av.AudioCodecContext | None = None
        self._resampler: av.AudioResampler | None = None
        self._next_sample: int | None = None  # 1/48000: where the samples encoded so far end
        self._last_dts: int | None = None
        self._flushed = False
        # What the muxer writes in the program table; set once the codec is open (read from other threads).
        self.description: AudioCodec | None = None
        self.frames = 0  # encoder input frames (after resampling)
        self.dropped = 0  # input frames behind the sample clock

    def open(self) -> AudioCodec:
        """Open the codec now (a segment that is to carry audio needs its description before any packet)."""
        with self._lock:
            return self._open()

    def _open(self) -> AudioCodec:
        if self._ctx is None:
            ctx = av.CodecContext.create(self._codec, "w")
            if not isinstance(ctx, av.AudioCodecContext):
                raise ValueError(f"{self._codec} is not an audio encoder")
            formats = ctx.codec.audio_formats
            if not formats:
                raise ValueError(f"{self._codec} names no sample format")
            ctx.sample_rate, ctx.layout, ctx.format = AUDIO_RATE, self._layout, formats[0]
            ctx.time_base = AUDIO_TIME_BASE
            ctx.bit_rate = self._bitrate
            ctx.open()
            self._ctx = ctx
            self._resampler = self._new_resampler(ctx)
            self.description = AudioCodec(ctx.codec.canonical_name, ctx.layout.nb_channels, ctx.extradata or b"")
        assert self.description is not None
        return self.description

    @staticmethod
    def _new_resampler(ctx: av.AudioCodecContext) -> av.AudioResampler:
        return av.AudioResampler(format=ctx.format, layout=ctx.layout, rate=AUDIO_RATE, frame_size=ctx.frame_size)

    def encode(self, frame: av.AudioFrame, timestamp: int, time_base: Fraction) -> list[EncodedAudio]:
        """One decoded or processed frame, ``timestamp`` in ``time_base`` its presentation time."""
        with self._lock:
            if self._flushed:
                return []
            self._open()
            assert self._ctx is not None and self._resampler is not None
            start = rescale(timestamp, time_base, AUDIO_TIME_BASE)
            if self._next_sample is not None and start < self._next_sample - _RESYNC_SAMPLES:
                # Behind what was already encoded (the input clock went back, video has not shown it yet).
                self.dropped += 1
                return []
            if self._next_sample is None or start - self._next_sample > _RESYNC_SAMPLES:
                # First frame or a discontinuity: restart the sample clock here, without the resampler's leftovers.
                self._resampler = self._new_resampler(self._ctx)
                self._next_sample = start
            frame.pts = None  # the resampler counts samples; the output is stamped here
            out: list[EncodedAudio] = []
            for chunk in self._resampler.resample(frame):
                chunk.pts, chunk.time_base = self._next_sample, AUDIO_TIME_BASE
                self._next_sample += chunk.samples
                self.frames += 1
                out += self._packets(self._ctx.encode(chunk))
            return out

    def flush(self) -> list[EncodedAudio]:
        """The packets the codec still holds; after this the encoder takes no more frames."""
        with self._lock:
            if self._ctx is None or self._flushed:
                self._flushed = True
                return []
            self._flushed = True
            return self._packets(self._ctx.encode(None))

    def _packets(self, packets: list[av.Packet]) -> list[EncodedAudio]:
        out = []
        for packet in packets:
            if packet.pts is None or packet.pts < 0:
                continue  # Opus priming samples before time zero: MPEG-TS cannot carry negative timestamps
            if packet.dts is not None:
                if self._last_dts is not None and packet.dts <= self._last_dts:
                    continue
                self._last_dts = packet.dts
            out.append(EncodedAudio(bytes(packet), rescale(packet.pts, packet.time_base, TIME_BASE)))
        return out

    def close(self) -> None:
        with self._lock:
            self._ctx = self._resampler = None
            self._flushed = True
