"""Decode trickle input segments (MPEG-TS: H.264 video, Opus or AAC audio) into PyAV frames.

Each segment gets its own demuxer, fed chunk by chunk while the segment is still arriving (``SegmentReader``),
so frames come out as soon as their bytes are in rather than when the segment completes. A damaged segment
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
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import av
import av.error

log = logging.getLogger(__name__)

DEFAULT_MAX_FRAMERATE = 24  # pytrickle decoder.py
DEFAULT_MAX_PIXELS = 4096 * 4096
DEFAULT_MAX_BUFFERED = 4 * 1024 * 1024  # bytes fed but not yet read by the decode thread

# Decoders the worker runs on untrusted input (FFmpeg's many others are attack surface no gateway needs):
# what go-livepeer gateways and WHIP/RTMP ingest produce. A segment declaring anything else ends the stream.
VIDEO_CODECS = frozenset({"h264", "hevc"})
AUDIO_CODECS = frozenset({"aac", "opus", "mp3", "mp2"})


class SegmentReader:
    """A blocking, read-only file object over one segment's chunks, fed from another thread.

    ``feed()`` and ``finish()`` never block; ``read()`` blocks until data, the end, or ``abort()``.
    """

    def __init__(self, max_buffered: int = DEFAULT_MAX_BUFFERED) -> None:
        self._chunks: deque[bytes] = deque()
        self._current = memoryview(b"")
        self._done = False
        self._aborted = False
        self._cond = threading.Condition()
        self.bytes_fed = 0
        self._buffered = 0  # fed, not yet taken by read()
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

    def finish(self) -> None:
        with self._cond:
            self._done = True
            self._cond.notify()

    def abort(self) -> None:
        """Make the reader return end-of-file at once, dropping anything not yet read."""
        with self._cond:
            self._aborted = True
            self._chunks.clear()
            self._buffered = 0
            self._cond.notify()
            self._wake_feeder()

    def read(self, size: int = -1) -> bytes:
        if not self._current:
            with self._cond:
                while not self._chunks and not self._done and not self._aborted:
                    self._cond.wait()
                if self._aborted or not self._chunks:
                    return b""
                self._current = memoryview(self._chunks.popleft())
                self._buffered -= len(self._current)
                if self._buffered <= self._max_buffered:
                    self._wake_feeder()
        if size < 0 or size >= len(self._current):
            out, self._current = self._current, memoryview(b"")
        else:
            out, self._current = self._current[:size], self._current[size:]
        return bytes(out)


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


def _hw_decoder_name(codec: str) -> str | None:
    name = {"h264": "h264_cuvid", "hevc": "hevc_cuvid"}.get(codec)
    return name if name is not None and name in av.codecs_available else None


class SegmentDecoder:
    """Demuxes one segment at a time and decodes with codec contexts kept across segments."""

    def __init__(self, hardware: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self._hardware = hardware
        self._max_pixels = max_pixels
        self._video: av.VideoCodecContext | None = None
        self._video_key: str | None = None
        self._audio: av.AudioCodecContext | None = None
        self._audio_key: tuple[str, int, int] | None = None
        self._audio_parser: av.CodecContext | None = None
        self.has_audio = False  # the current segment declares an audio stream (known before its first frame)
        self._audio_rate = 0

    def decode(self, source: SegmentReader, on_frame: FrameCallback) -> SegmentReport:
        """Decode everything ``source`` yields, calling ``on_frame`` per frame. Never raises for bad media."""
        report = SegmentReport()
        try:
            # Forced format and tiny probe: the PMT at the segment start is all we need, and waiting for
            # more would delay the first frame by however long the probe data takes to arrive. noparse: a video
            # packet goes to the decoder as soon as its PES ends, instead of the H.264 parser waiting for the
            # next access unit (one frame interval); audio packets are split by our own parser (``_audio_packets``).
            container = av.open(
                source,
                mode="r",
                format="mpegts",
                options={"probesize": "32", "analyzeduration": "0", "fflags": "+noparse"},
            )
        except av.error.EOFError:
            report.errors.append("open: no MPEG-TS stream found before the segment ended")
            _drain(source)
            return report
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            report.errors.append(f"open: {exc}")
            _drain(source)
            return report
        try:
            video_stream = container.streams.video[0] if container.streams.video else None
            audio_stream = container.streams.audio[0] if container.streams.audio else None
            self.has_audio = audio_stream is not None
            report.video_codec = video_stream.codec_context.name if video_stream is not None else None
            report.audio_codec = audio_stream.codec_context.name if audio_stream is not None else None
            report.refused = self._refusal(video_stream, audio_stream)
            if report.refused is not None:
                return report
            if video_stream is not None:
                self._select_video_decoder(video_stream)
            if audio_stream is not None:
                self._select_audio_decoder(audio_stream)
            for packet in container.demux(*[s for s in (video_stream, audio_stream) if s is not None]):
                if packet.size == 0:
                    continue  # the end-of-stream flush packet: decoders stay open for the next segment
                video, audio = (self._video, None) if packet.stream is video_stream else (None, self._audio)
                frames: list[av.VideoFrame] | list[av.AudioFrame]
                try:
                    if video is not None:
                        frames = video.decode(packet)
                    elif audio is not None:
                        frames = [f for p in self._audio_packets(packet) for f in audio.decode(p)]
                    else:
                        continue
                except av.error.FFmpegError as exc:
                    if video is not None and (too_big := self._size_refusal(video.width, video.height)):
                        report.refused = too_big  # max_pixels stopped the decoder before it allocated the frame
                        return report
                    if len(report.errors) < 10:
                        report.errors.append(f"decode: {exc}")
                    continue
                for frame in frames:
                    if frame.pts is None:
                        continue
                    if isinstance(frame, av.VideoFrame):
                        if too_big := self._size_refusal(frame.width, frame.height):
                            report.refused = too_big  # a decoder that ignores max_pixels (hardware)
                            return report
                        report.video_frames += 1
                    else:
                        report.audio_frames += 1
                    if frame.time_base is None:
                        frame.time_base = packet.time_base
                    on_frame(frame)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            report.errors.append(f"demux: {exc}")
        except IndexError:
            # PyAV lists the streams found at open; a packet of a stream the program table announced later
            # (a damaged table, or a program change inside one segment) has no entry there, and its demux
            # generator cannot go on past it.
            report.errors.append("demux: a stream appeared mid-segment; the rest of the segment is skipped")
        finally:
            container.close()
            _drain(source)
        return report

    def _size_refusal(self, width: int, height: int) -> str | None:
        if width * height > self._max_pixels:
            return f"input video is {width}x{height}, over this worker's maximum of {self._max_pixels} pixels"
        return None

    def _refusal(self, video: av.VideoStream | None, audio: av.AudioStream | None) -> str | None:
        """Why this segment's streams are not decoded at all, from its program table (before any frame)."""
        if video is not None:
            ctx = video.codec_context
            if ctx.name not in VIDEO_CODECS:
                return f"input video codec {ctx.name} is not accepted ({', '.join(sorted(VIDEO_CODECS))})"
            if too_big := self._size_refusal(ctx.width or 0, ctx.height or 0):
                return too_big
        if audio is not None and audio.codec_context.name not in AUDIO_CODECS:
            name = audio.codec_context.name
            return f"input audio codec {name} is not accepted ({', '.join(sorted(AUDIO_CODECS))})"
        return None

    def _select_video_decoder(self, stream: av.VideoStream) -> None:
        name = stream.codec_context.name
        if self._video is not None and self._video_key == name:
            return
        decoder: av.VideoCodecContext | None = None
        hw_name = _hw_decoder_name(name) if self._hardware else None
        if hw_name is not None:
            try:
                decoder = _video_decoder(hw_name)
                decoder.open()  # fails here, not mid-stream, when there is no usable GPU
            except av.error.FFmpegError as exc:
                log.warning("hardware decoder %s unavailable (%s); using software", hw_name, exc)
                decoder = None
        if decoder is None:
            decoder = _video_decoder(name)
            extradata = stream.codec_context.extradata
            if extradata:
                decoder.extradata = extradata
            decoder.thread_type = "SLICE"  # frame threading would add one frame of latency per thread
            # FFmpeg refuses larger pictures when it parses their size, before it allocates a frame.
            decoder.options = {"max_pixels": str(self._max_pixels)}
        log.info("video decoder %s for input codec %s", decoder.name, name)
        self._video, self._video_key = decoder, name

    def _audio_packets(self, packet: av.Packet) -> list[av.Packet]:
        """Split one audio PES (demuxed without parsing) into codec packets, timestamped from the PES."""
        parser = self._audio_parser
        if parser is None:
            return [packet]
        parts = parser.parse(bytes(packet))
        if len(parts) == 1 and parts[0].size == packet.size:
            return [packet]
        pts, time_base, rate = packet.pts, packet.time_base, self._audio_rate
        for part in parts:
            duration = round(part.duration / rate / time_base) if part.duration and rate and time_base else 0
            part.time_base = time_base
            part.pts = part.dts = pts
            part.duration = duration  # the parser counts in samples
            if pts is not None and duration:
                pts += duration
            else:
                pts = None
        return parts

    def _select_audio_decoder(self, stream: av.AudioStream) -> None:
        ctx = stream.codec_context
        key = (ctx.name, ctx.sample_rate or 0, ctx.channels if hasattr(ctx, "channels") else 0)
        if self._audio is not None and self._audio_key == key:
            return
        # The demuxer's context carries what the container knows (e.g. the Opus header); keep it.
        self._audio, self._audio_key = ctx, key
        self._audio_rate = ctx.sample_rate or 0
        try:
            self._audio_parser = av.CodecContext.create(ctx.name, "r")
        except (av.error.FFmpegError, ValueError):
            self._audio_parser = None
        log.info("audio decoder %s %s Hz", ctx.name, ctx.sample_rate)


def _video_decoder(name: str) -> av.VideoCodecContext:
    decoder = av.CodecContext.create(name, "r")
    if not isinstance(decoder, av.VideoCodecContext):
        raise ValueError(f"{name} is not a video decoder")
    return decoder


def _drain(source: SegmentReader) -> None:
    """Consume whatever is left so the feeding side never waits on a reader nobody reads."""
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
