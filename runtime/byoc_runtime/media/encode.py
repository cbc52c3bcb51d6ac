"""Encode processed frames into MPEG-TS segments: H.264 (no B-frames) + Opus, one segment per keyframe.

Wire requirements (shared/protocols.md section 2; pytrickle ``encoder.py`` v0.1.6): output segments are
MPEG-TS carrying H.264 and Opus, timestamps in 1/90000, a keyframe every ``gop_seconds`` of presentation time
(pytrickle uses 2 s and ``forced-idr``), ``tune=zerolatency`` and ``bf=0`` for low latency.

Unlike pytrickle, which drives ffmpeg's ``segment`` muxer through OS pipes, the encoders here live on their own
and their packets go through the runtime's own MPEG-TS muxer (``media.tsmux``: written as they come, a video
frame never waits for audio) into a ``SegmentSink``. A segment always starts with PAT/PMT and an IDR frame, and
the transport can start its POST for the segment before the segment is complete.

Not thread-safe: one ``SegmentEncoder`` belongs to one thread at a time (the session's encode lane). Its audio
is encoded by an ``AudioEncoder`` (``media.audio_encode``), which the lane runs on a thread of its own and whose
packets it hands over with ``add_audio``; ``encode_audio`` does both in the caller's thread.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

import av
import numpy as np

from .audio_encode import AudioEncoder, EncodedAudio
from .mpegts import TIME_BASE, rescale
from .tsmux import Track, TsMuxer, tracks

log = logging.getLogger(__name__)

# Audio is held back until video has caught up to it, so both land in the same segment; this much audio
# (in seconds) is the most we hold before giving up on video and releasing it anyway.
MAX_AUDIO_HOLD = 2.0
# Audio may run this far ahead of the last video frame and still be released.
AUDIO_LEAD = 0.1
# A timestamp jump larger than this (seconds) is treated as a discontinuity in the input.
MAX_TIMESTAMP_GAP = 5.0


@dataclass(frozen=True, slots=True)
class EncoderSettings:
    video_codec: str = "libx264"
    audio_codec: str = "libopus"
    gop_seconds: float = 1.0
    video_bitrate: int = 0  # bits/s; 0 lets the codec's rate control (CRF for x264) decide
    preset: str = "superfast"
    audio_bitrate: int = 96_000
    audio_layout: str = "stereo"


class SegmentSink(Protocol):
    """Receives the encoder's output; called from the encoding thread."""

    def begin_segment(self) -> None: ...

    def write(self, data: bytes) -> None: ...

    def end_segment(self) -> None: ...


class SegmentBoundary:
    """Marks the start of a new segment in a ``BufferedSink``'s output."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SegmentBoundary()"


SEGMENT_START = SegmentBoundary()


class BufferedSink:
    """Collects output as ``SEGMENT_START`` markers and byte chunks, for the caller to drain after each call.

    Segment ends are implicit: a segment ends where the next one starts, or when the encoder closes.
    """

    def __init__(self) -> None:
        self._parts: list[bytes | SegmentBoundary] = []

    def begin_segment(self) -> None:
        self._parts.append(SEGMENT_START)

    def write(self, data: bytes) -> None:
        self._parts.append(bytes(data))

    def end_segment(self) -> None:
        pass

    def drain(self) -> list[bytes | SegmentBoundary]:
        parts, self._parts = self._parts, []
        return parts


def collect_segments(parts: list[bytes | SegmentBoundary]) -> list[bytes]:
    """Join a drained part list into whole segments (the first may be the tail of an earlier one)."""
    segments: list[bytearray] = []
    for part in parts:
        if isinstance(part, SegmentBoundary):
            segments.append(bytearray())
        elif segments:
            segments[-1] += part
        else:
            segments.append(bytearray(part))
    return [bytes(s) for s in segments]


def _video_codec_options(codec: str, preset: str, gop_frames: int) -> dict[str, str]:
    if codec == "libx264":
        return {
            "preset": preset,
            "tune": "zerolatency",
            "bf": "0",
            "forced-idr": "1",
            # Keyframes are placed by us at GOP boundaries; stop x264 adding its own.
            "x264-params": f"keyint={gop_frames}:min-keyint={gop_frames}:scenecut=0",
        }
    if codec.endswith("_nvenc"):
        return {"preset": "p1", "tune": "ull", "zerolatency": "1", "bf": "0", "forced-idr": "1", "rc-lookahead": "0"}
    return {"bf": "0"}


@dataclass(frozen=True, slots=True)
class _HeldAudio:
    """An encoded audio packet waiting for video to catch up, with its output timestamp (1/90000)."""

    pts: int
    data: bytes


class SegmentEncoder:
    """Encodes video and audio frames with input timestamps and muxes them into per-keyframe segments."""

    def __init__(
        self, sink: SegmentSink, settings: EncoderSettings | None = None, audio: AudioEncoder | None = None
    ) -> None:
        self.settings = s = settings or EncoderSettings()
        self._sink = sink
        self._video: av.VideoCodecContext | None = None
        self._video_size: tuple[int, int] | None = None
        self.audio = audio or AudioEncoder(s.audio_codec, s.audio_bitrate, s.audio_layout)
        self._muxer = TsMuxer()
        self._segment: tuple[Track, ...] | None = None  # the open segment's tracks
        self._segment_start_pts: int | None = None  # 1/90000
        self._last_keyframe_pts: int | None = None
        self._last_video_pts: int | None = None
        self._offset = 0  # added to input timestamps (1/90000) to keep output monotonic
        self._held_audio: deque[_HeldAudio] = deque()
        self._video_seen = False
        self.segments = 0
        self.video_frames = 0
        self.dropped_audio = 0  # packets given up on while waiting for video

    # -- video ------------------------------------------------------------------------------------------

    def expect_audio(self) -> None:
        """Announce that audio will follow, so segments opened from now on carry an audio stream."""
        self.audio.open()

    def encode_video(self, frame: av.VideoFrame, timestamp: int, time_base: Fraction) -> None:
        """Encode one frame; ``timestamp`` in ``time_base`` is its presentation time."""
        pts = self._to_output_pts(timestamp, time_base, detect_jumps=True)
        if self._last_video_pts is not None and pts <= self._last_video_pts:
            return  # duplicate or reordered timestamp; the encoder needs strictly increasing pts
        width, height = frame.width & ~1, frame.height & ~1  # 4:2:0 needs even sizes
        if self._video is None or self._video_size != (width, height):
            self._open_video(width, height)
        if (frame.width, frame.height) != (width, height) or frame.format.name != "yuv420p":
            frame = frame.reformat(width=width, height=height, format="yuv420p")
        frame.pts = pts
        frame.time_base = TIME_BASE
        gop = round(self.settings.gop_seconds * TIME_BASE.denominator)
        if self._last_keyframe_pts is None or pts - self._last_keyframe_pts >= gop:
            frame.pict_type = av.video.frame.PictureType.I
            self._last_keyframe_pts = pts
        else:
            frame.pict_type = av.video.frame.PictureType.NONE
        self._last_video_pts = pts
        self._video_seen = True
        self.video_frames += 1
        assert self._video is not None
        for packet in self._video.encode(frame):
            self._mux_video(packet)
        self._release_audio()

    def _open_video(self, width: int, height: int) -> None:
        if self._video is not None:
            for packet in self._video.encode(None):
                self._mux_video(packet)
            self._close_segment()
        s = self.settings
        ctx = av.CodecContext.create(s.video_codec, "w")
        if not isinstance(ctx, av.VideoCodecContext):
            raise ValueError(f"{s.video_codec} is not a video encoder")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.framerate = Fraction(30)
        ctx.time_base = TIME_BASE
        if s.video_bitrate:
            ctx.bit_rate = s.video_bitrate
        gop_frames = max(1, round(s.gop_seconds * 30)) * 4
        ctx.gop_size = gop_frames
        ctx.options = _video_codec_options(s.video_codec, s.preset, gop_frames)
        ctx.open()  # no global header: SPS/PPS go in-band with every keyframe, as MPEG-TS wants
        self._video, self._video_size = ctx, (width, height)
        self._last_keyframe_pts = None  # the new encoder must start with a keyframe
        log.info("video encoder %s opened at %dx%d", s.video_codec, width, height)

    def _mux_video(self, packet: av.Packet) -> None:
        if packet.is_keyframe or self._segment is None:
            self._open_segment(packet.pts)
        assert packet.pts is not None
        pts = rescale(packet.pts, packet.time_base, TIME_BASE)
        dts = None if packet.dts is None else rescale(packet.dts, packet.time_base, TIME_BASE)
        self._sink.write(self._muxer.video(bytes(packet), pts, dts, packet.is_keyframe))

    # -- audio ------------------------------------------------------------------------------------------

    def encode_audio(self, frame: av.AudioFrame, timestamp: int, time_base: Fraction) -> None:
        """Encode one audio frame in this thread; it is muxed once video has reached its timestamp."""
        self.add_audio(self.audio.encode(frame, timestamp, time_base))

    def add_audio(self, packets: list[EncodedAudio]) -> None:
        """Packets from ``self.audio``, in order; each is muxed once video has reached its timestamp (or gave up)."""
        for packet in packets:
            pts = self._to_output_pts(packet.pts, TIME_BASE, detect_jumps=False)
            self._held_audio.append(_HeldAudio(pts, packet.data))
        self._release_audio()

    def _release_audio(self) -> None:
        held = self._held_audio
        while held:
            head_pts = held[0].pts
            held_seconds = float((held[-1].pts - head_pts) * TIME_BASE)
            if self._segment is None and self._video_seen:
                # Video is coming but no segment is open yet: keep only the last MAX_AUDIO_HOLD seconds.
                if held_seconds > MAX_AUDIO_HOLD:
                    held.popleft()
                    self.dropped_audio += 1
                    continue
                return
            video_caught_up = (
                self._last_video_pts is not None and float((head_pts - self._last_video_pts) * TIME_BASE) <= AUDIO_LEAD
            )
            if not (video_caught_up or held_seconds > MAX_AUDIO_HOLD):
                return
            self._mux_audio(held.popleft())

    def _mux_audio(self, packet: _HeldAudio) -> None:
        pts = packet.pts
        if self._segment is None:
            if self._video_seen:
                return
            self._open_segment(pts)
        elif not self._video_seen:
            # Audio-only input: cut segments on audio time.
            assert self._segment_start_pts is not None
            if pts - self._segment_start_pts >= self.settings.gop_seconds * TIME_BASE.denominator:
                self._open_segment(pts)
        assert self._segment is not None
        if all(track.kind == "h264" for track in self._segment):
            return  # segment opened before the audio encoder existed
        self._sink.write(self._muxer.audio(packet.data, pts))

    # -- segments ---------------------------------------------------------------------------------------

    def _open_segment(self, start_pts: int | None) -> None:
        self._close_segment()
        # Held packets mean the audio encoder is open: its description is set by then.
        self._segment = tracks(self._video is not None, self.audio.description)
        self._sink.begin_segment()
        self._sink.write(self._muxer.program(self._segment))
        self._segment_start_pts = start_pts
        self.segments += 1

    def _close_segment(self) -> None:
        if self._segment is None:
            return
        self._segment = None
        self._sink.end_segment()

    # -- timing -----------------------------------------------------------------------------------------

    def _to_output_pts(self, timestamp: int, time_base: Fraction, detect_jumps: bool) -> int:
        pts = rescale(timestamp, time_base, TIME_BASE) + self._offset
        last = self._last_video_pts
        if (
            detect_jumps
            and last is not None
            and (pts < last - 1 or pts - last > MAX_TIMESTAMP_GAP * TIME_BASE.denominator)
        ):
            # The input clock jumped (restarted publisher, wrapped timestamps): continue just after the last
            # frame, shifting audio and video alike so they stay in sync.
            step = TIME_BASE.denominator // 30
            self._offset += last + step - pts
            pts = last + step
            log.info("input timestamps jumped; output offset now %d", self._offset)
        return pts

    def close(self) -> None:
        """Flush the encoders and finish the open segment."""
        try:
            if self._video is not None:
                for packet in self._video.encode(None):
                    self._mux_video(packet)
            self.add_audio(self.audio.flush())  # nothing when the audio thread flushed it already
            while self._held_audio:
                self._mux_audio(self._held_audio.popleft())
        finally:
            self._close_segment()
            self._video = None
            self.audio.close()


def encoder_available(name: str) -> bool:
    """Whether video encoder ``name`` opens here: NVENC can be compiled in yet missing from this GPU or driver."""
    try:
        ctx = av.CodecContext.create(name, "w")
        if not isinstance(ctx, av.VideoCodecContext):
            raise ValueError("not a video encoder")
        ctx.width, ctx.height, ctx.pix_fmt = 256, 256, "yuv420p"
        ctx.time_base = Fraction(1, 30)
        ctx.open()
    except (av.error.FFmpegError, ValueError) as exc:
        log.info("encoder %s unavailable: %s", name, exc)
        return False
    return True


def rgb_frame(rgb: np.ndarray) -> av.VideoFrame:
    """Wrap a uint8 (H, W, 3) RGB array for ``SegmentEncoder.encode_video``."""
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
