"""Decode trickle input segments (MPEG-TS: H.264 video, Opus or AAC audio) into PyAV frames.

Each segment gets its own demuxer (``media.mpegts``, ours: FFmpeg's holds every video frame until the next one
starts), fed chunk by chunk while the segment is still arriving (``SegmentReader``), so a frame is decoded as
soon as its bytes are in rather than a frame interval later or when the segment completes. A damaged segment
therefore costs that segment only, and a codec or resolution change between segments needs no special case.
The codec contexts, though, persist across segments: decoding does not restart on every segment and a
segment need not start on a keyframe.

pytrickle ``decoder.py`` instead pipes all segments through one long-lived demuxer and restarts it (up to 3
times) when it fails. Its frame-rate cap (drop frames arriving faster than ``max_framerate``, default 24) is
reproduced by ``FrameRateLimiter``.

Blocking: ``SegmentDecoder.decode`` runs in a worker thread (PyAV releases the GIL while decoding).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import av
import av.error

from .mpegts import PTS_HZ, TIME_BASE, ElementaryStream, Pes, ProgramTable, TsDemuxer

log = logging.getLogger(__name__)

DEFAULT_MAX_FRAMERATE = 24  # pytrickle decoder.py
DEFAULT_MAX_PIXELS = 4096 * 4096
DEFAULT_MAX_BUFFERED = 4 * 1024 * 1024  # bytes fed but not yet read by the decode thread

# Decoders the worker runs on untrusted input (FFmpeg's many others are attack surface no gateway needs):
# what go-livepeer gateways and WHIP/RTMP ingest produce. A segment declaring anything else ends the stream.
VIDEO_CODECS = frozenset({"h264", "hevc"})
AUDIO_CODECS = frozenset({"aac", "opus", "mp3", "mp2"})


class SegmentReader:
    """One segment's chunks, fed from the event loop and read as they were fed by the decode thread.

    ``feed()`` and ``finish()`` never block; ``read_chunk()`` blocks until a chunk, the end, or ``abort()``.
    Chunks keep their boundaries: the decoder hands out a frame whose end it has seen once it has read
    everything fed so far (``caught_up``), instead of waiting for the next frame to begin.
    """

    def __init__(self, max_buffered: int = DEFAULT_MAX_BUFFERED) -> None:
        self._chunks: deque[bytes] = deque()
        self._done = False
        self._aborted = False
        self._cond = threading.Condition()
        self.bytes_fed = 0
        self.cut = False  # the segment broke off before its end (``finish(cut=True)``)
        self._buffered = 0  # fed, not yet taken by read_chunk()
        self._max_buffered = max_buffered
        self._room: asyncio.Event | None = None  # set (on the feeding loop) when the reader caught up
        self._loop: asyncio.AbstractEventLoop | None = None

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        with self._cond:
            self._chunks.append(chunk)
            self.bytes_fed += len(chunk)
            self._buffered += len(chunk)
            self._cond.notify()

    async def put(self, chunk: bytes) -> None:
        """``feed``, then wait while more than ``max_buffered`` bytes wait for the decoder (back-pressure: the
        network is not read faster than the decoder takes it)."""
        self.feed(chunk)
        with self._cond:
            if self._buffered <= self._max_buffered or self._aborted:
                return
            if self._room is None:
                self._loop, self._room = asyncio.get_running_loop(), asyncio.Event()
            self._room.clear()
        await self._room.wait()

    def _wake_feeder(self) -> None:
        """With the lock held: let a waiting ``put`` go on."""
        if self._room is not None and self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._room.set)

    def finish(self, cut: bool = False) -> None:
        """No more chunks; ``cut``: the segment broke off (its last frame may be incomplete)."""
        with self._cond:
            if not self._done:
                self._done, self.cut = True, cut
            self._cond.notify()

    def abort(self) -> None:
        """Make the reader return end-of-file at once, dropping anything not yet read."""
        with self._cond:
            self._aborted = True
            self._chunks.clear()
            self._buffered = 0
            self._cond.notify()
            self._wake_feeder()

    def read_chunk(self) -> bytes:
        """The next chunk as it was fed; b"" at the end or once aborted."""
        with self._cond:
            while not self._chunks and not self._done and not self._aborted:
                self._cond.wait()
            if self._aborted or not self._chunks:
                return b""
            chunk = self._chunks.popleft()
            self._buffered -= len(chunk)
            if self._buffered <= self._max_buffered:
                self._wake_feeder()
            return chunk

    @property
    def caught_up(self) -> bool:
        """Every chunk fed so far has been read."""
        with self._cond:
            return not self._chunks


@dataclass(slots=True)
class SegmentReport:
    """What decoding one segment found."""

    video_codec: str | None = None
    audio_codec: str | None = None
    video_frames: int = 0
    audio_frames: int = 0
    errors: list[str] = field(default_factory=list)
    refused: str | None = None  # input this worker does not take (codec, size): the stream ends

    @property
    def ok(self) -> bool:
        return not self.errors and (self.video_frames > 0 or self.audio_frames > 0)


FrameCallback = Callable[[av.VideoFrame | av.AudioFrame], None]
OPUS_CHANNEL_CONFIGS = (1, 2)  # mono, stereo (RFC 7845 mapping family 0; the others need a channel map)
_Context = TypeVar("_Context", av.VideoCodecContext, av.AudioCodecContext)


def _hw_decoder_name(codec: str) -> str | None:
    name = {"h264": "h264_cuvid", "hevc": "hevc_cuvid"}.get(codec)
    return name if name is not None and name in av.codecs_available else None


def _opus_head(channels: int) -> bytes:
    """The Opus identification header (RFC 7845 5.1) that MPEG-TS leaves out: version 1, no pre-skip, 48 kHz,
    no gain, mapping family 0."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, 0, 48_000, 0, 0)


def _context(name: str, kind: type[_Context]) -> _Context:
    """A decoding context for codec ``name``, which must be of ``kind`` (video or audio)."""
    ctx = av.CodecContext.create(name, "r")
    if not isinstance(ctx, kind):
        raise ValueError(f"{name} is not a {kind.__name__}")
    return ctx


@dataclass(frozen=True, slots=True)
class _VideoTrack:
    stream: ElementaryStream
    decoder: av.VideoCodecContext


@dataclass(frozen=True, slots=True)
class _AudioTrack:
    stream: ElementaryStream
    decoder: av.AudioCodecContext
    parser: av.CodecContext | None  # splits a PES into codec packets


class SegmentDecoder:
    """Demuxes one segment at a time (``media.mpegts``) and decodes with codec contexts kept across segments."""

    def __init__(self, hardware: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self._hardware = hardware
        self._max_pixels = max_pixels
        self._video: _VideoTrack | None = None
        self._audio: _AudioTrack | None = None
        self.has_audio = False  # the current segment declares an audio stream (known before its first frame)
        self.video_decode_s = 0.0  # how long the decoder call that produced the latest video frame took
        # How long the latest video frame was held in the decoder for reordering (B-frames): from its packet going
        # in to the frame coming out. FFmpeg's H.264 decoder keeps the SPS's num_reorder_frames pictures back.
        self.video_reorder_s = 0.0
        self._fed: dict[int, float] = {}  # video packets in the decoder: pts -> when fed

    def decode(self, source: SegmentReader, on_frame: FrameCallback) -> SegmentReport:
        """Decode everything ``source`` yields, calling ``on_frame`` per frame. Never raises for bad media.

        A frame is decoded as soon as the chunk that completed it has been read and nothing else waits in
        ``source`` (a live source's frame interval is not spent waiting for the next frame's bytes)."""
        report = SegmentReport()
        demuxer = TsDemuxer()
        try:
            while chunk := source.read_chunk():
                for event in demuxer.feed(chunk):
                    if isinstance(event, ProgramTable):
                        if not self._start_program(event, report):
                            return report
                    elif not self._decode_pes(event, demuxer.program, report, on_frame):
                        return report
                if source.caught_up:
                    for pes in demuxer.chunk_end():
                        if not self._decode_pes(pes, demuxer.program, report, on_frame):
                            return report
            for pes in demuxer.end(cut=source.cut):
                if not self._decode_pes(pes, demuxer.program, report, on_frame):
                    return report
            if demuxer.program is None and source.bytes_fed:
                report.errors.append("demux: no MPEG-TS program table (PAT and PMT) in the segment")
        finally:
            report.errors[:0] = demuxer.errors[: max(0, 10 - len(report.errors))]
            _drain(source)
        return report

    def flush(self, on_frame: FrameCallback) -> int:
        """The input is over: hand out the frames the video decoder still holds to reorder B-frames (the last
        1-2 of the stream; segments never flush it, so that reordering goes on across them). Returns how many."""
        if self._video is None:
            return 0
        decoder = self._video.decoder
        try:
            frames = [f for f in decoder.decode(None) if f.pts is not None]
        except av.error.FFmpegError:
            frames = []
        decoder.flush_buffers()  # out of draining: the context may be given more input afterwards
        self._fed.clear()
        for frame in frames:
            _deliver(frame, on_frame)
        return len(frames)

    def _start_program(self, table: ProgramTable, report: SegmentReport) -> bool:
        """Check and set up decoders for a program table; False when its streams are refused."""
        video, audio = table.video, table.audio
        self.has_audio = audio is not None
        report.video_codec = video.codec if video is not None else None
        report.audio_codec = audio.codec if audio is not None else None
        report.refused = self._refusal(video, audio)
        if report.refused is not None:
            return False
        if video is not None:
            self._select_video_decoder(video)
        if audio is not None:
            self._select_audio_decoder(audio)
        return True

    def _decode_pes(
        self, pes: Pes, program: ProgramTable | None, report: SegmentReport, on_frame: FrameCallback
    ) -> bool:
        """Decode one PES, calling ``on_frame`` per frame; False when the input is refused (too big)."""
        if program is None or not pes.data:
            return True
        video, audio = program.video, program.audio
        packet = av.Packet(pes.data)
        packet.time_base = TIME_BASE
        packet.pts = pes.pts
        packet.dts = pes.dts if pes.dts is not None else pes.pts
        if video is not None and pes.pid == video.pid and self._video is not None:
            decoder = self._video.decoder
            started = time.perf_counter()
            if pes.pts is not None:
                if len(self._fed) > 64:  # pts that never came out (damaged input): forget them
                    self._fed.clear()
                self._fed[pes.pts] = started
            try:
                frames = decoder.decode(packet)
            except av.error.FFmpegError as exc:
                if too_big := self._size_refusal(decoder.width, decoder.height):
                    report.refused = too_big  # max_pixels stopped the decoder before it allocated the frame
                    return False
                _note(report, f"decode: {exc}")
                return True
            self.video_decode_s = time.perf_counter() - started
            for frame in frames:
                if frame.pts is None:
                    continue
                self.video_reorder_s = max(0.0, started - self._fed.pop(frame.pts, started))
                if too_big := self._size_refusal(frame.width, frame.height):
                    report.refused = too_big  # a decoder that ignores max_pixels (hardware)
                    return False
                report.video_frames += 1
                _deliver(frame, on_frame)
        elif audio is not None and pes.pid == audio.pid and self._audio is not None:
            try:
                audio_frames = self._decode_audio(self._audio, packet)
            except av.error.FFmpegError as exc:
                _note(report, f"decode: {exc}")
                return True
            for audio_frame in audio_frames:
                report.audio_frames += 1
                _deliver(audio_frame, on_frame)
        return True

    @staticmethod
    def _decode_audio(track: _AudioTrack, packet: av.Packet) -> list[av.AudioFrame]:
        """Split one audio PES into codec packets and decode them. The PES timestamp is the first packet's; each
        next one starts where the samples decoded before it end."""
        parts = track.parser.parse(bytes(packet)) if track.parser is not None else [packet]
        frames: list[av.AudioFrame] = []
        pts = packet.pts
        for part in parts:
            part.time_base = TIME_BASE
            part.pts = part.dts = pts
            for frame in track.decoder.decode(part):
                if frame.pts is None:
                    frame.pts = pts
                if frame.pts is None:
                    continue
                if frame.sample_rate:
                    pts = frame.pts + round(frame.samples * PTS_HZ / frame.sample_rate)
                frames.append(frame)
        return frames

    def _size_refusal(self, width: int, height: int) -> str | None:
        if width * height > self._max_pixels:
            return f"input video is {width}x{height}, over this worker's maximum of {self._max_pixels} pixels"
        return None

    @staticmethod
    def _refusal(video: ElementaryStream | None, audio: ElementaryStream | None) -> str | None:
        """Why this segment's streams are not decoded at all, from its program table (before any frame)."""
        if video is not None and video.codec not in VIDEO_CODECS:
            return f"input video codec {video.codec} is not accepted ({', '.join(sorted(VIDEO_CODECS))})"
        if audio is not None and audio.codec not in AUDIO_CODECS:
            return f"input audio codec {audio.codec} is not accepted ({', '.join(sorted(AUDIO_CODECS))})"
        if audio is not None and audio.codec == "opus" and audio.opus_channel_config not in OPUS_CHANNEL_CONFIGS:
            return f"input Opus channel configuration {audio.opus_channel_config} is not accepted (mono, stereo)"
        return None

    def _select_video_decoder(self, stream: ElementaryStream) -> None:
        if self._video is not None and self._video.stream.codec == stream.codec:
            return
        decoder: av.VideoCodecContext | None = None
        hw_name = _hw_decoder_name(stream.codec) if self._hardware else None
        if hw_name is not None:
            try:
                decoder = _context(hw_name, av.VideoCodecContext)
                decoder.open()  # fails here, not mid-stream, when there is no usable GPU
            except av.error.FFmpegError as exc:
                log.warning("hardware decoder %s unavailable (%s); using software", hw_name, exc)
                decoder = None
        if decoder is None:
            decoder = _context(stream.codec, av.VideoCodecContext)
            # Slice threads only: frame threading would add one frame of latency per thread. No reorder delay
            # is set here: H.264 takes it from the SPS (0 without B-frames), HEVC from sps_max_num_reorder_pics.
            decoder.thread_type = "SLICE"
            # FFmpeg refuses larger pictures when it parses their size, before it allocates a frame.
            decoder.options = {"max_pixels": str(self._max_pixels)}
        log.info("video decoder %s for input codec %s", decoder.name, stream.codec)
        self._video = _VideoTrack(stream, decoder)

    def _select_audio_decoder(self, stream: ElementaryStream) -> None:
        current = self._audio
        if current is not None and (current.stream.codec, current.stream.opus_channel_config) == (
            stream.codec,
            stream.opus_channel_config,
        ):
            return
        decoder = _context(stream.codec, av.AudioCodecContext)
        if stream.codec == "opus" and stream.opus_channel_config is not None:
            decoder.extradata = _opus_head(stream.opus_channel_config)
        try:
            parser: av.CodecContext | None = av.CodecContext.create(stream.codec, "r")
        except (av.error.FFmpegError, ValueError):
            parser = None
        self._audio = _AudioTrack(stream, decoder, parser)
        log.info("audio decoder %s", stream.codec)


def _note(report: SegmentReport, error: str) -> None:
    if len(report.errors) < 10:
        report.errors.append(error)


def _deliver(frame: av.VideoFrame | av.AudioFrame, on_frame: FrameCallback) -> None:
    if frame.time_base is None:
        frame.time_base = TIME_BASE
    on_frame(frame)


def _drain(source: SegmentReader) -> None:
    """Drop whatever is left so the feeding side never waits on a reader nobody reads."""
    source.abort()


class FrameRateLimiter:
    """Drops frames arriving faster than ``max_fps`` in presentation time (pytrickle ``decoder.py``)."""

    def __init__(self, max_fps: float = DEFAULT_MAX_FRAMERATE) -> None:
        self.max_fps = max_fps
        self._next: float | None = None

    def accept(self, t: float) -> bool:
        interval = 1.0 / self.max_fps if self.max_fps > 0 else 0.0
        if self._next is None or t > self._next + interval or t < self._next - 1.0:
            # First frame, a delayed frame, or the clock went back: resync on this frame.
            self._next = t + interval
            return True
        if t < self._next - 1e-6:
            return False
        # Step from the previous slot, not from t, so jitter does not cost frames.
        self._next += interval
        return True
