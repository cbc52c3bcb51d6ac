"""The floor: a bare PyAV decode + encode of the same input, in this process, no transport, no conversions.

Per session one thread demuxes each input segment (a demuxer per segment, decoders kept across segments, as the
runtime does), decodes H.264 and Opus, and encodes H.264 + Opus into one MPEG-TS muxer that discards its bytes.
The H.264 settings are the runtime's own (``media.encode``: preset, zerolatency, no B-frames, 1 s GOP), so the
floor moves with them. Frames stay yuv420p end to end: no RGB, no tensors, which is the part of a worker's
cost that a passthrough processor cannot avoid.
"""

from __future__ import annotations

import io
import resource
import threading
import time
from fractions import Fraction

import av
from byoc_runtime.media.encode import EncoderSettings, _video_codec_options

from .measurement import Measurement
from .source import FPS, Clip

TB = Fraction(1, 90_000)
AUDIO_TB = Fraction(1, 48_000)


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass


class Transcoder:
    """Decoders and encoders for one session; ``segment()`` pushes one input segment through them."""

    def __init__(self, width: int, height: int) -> None:
        settings = EncoderSettings()
        gop = round(settings.gop_seconds * FPS)
        self.out = av.open(_Discard(), "w", format="mpegts")
        self.video = self.out.add_stream(settings.video_codec, rate=FPS)
        self.video.width, self.video.height, self.video.pix_fmt = width, height, "yuv420p"
        self.video.time_base = TB
        self.video.codec_context.time_base = TB
        self.video.codec_context.gop_size = gop * 4
        self.video.codec_context.options = _video_codec_options(settings.video_codec, settings.preset, gop * 4)
        self.audio = self.out.add_stream(settings.audio_codec, rate=48_000)
        self.audio.layout = settings.audio_layout
        self.audio.codec_context.bit_rate = settings.audio_bitrate
        self.out.start_encoding()
        self.gop = gop
        self.resampler = av.AudioResampler(
            format=self.audio.codec_context.format,
            layout=settings.audio_layout,
            rate=48_000,
            frame_size=self.audio.codec_context.frame_size,
        )
        self.video_decoder = av.CodecContext.create("h264", "r")
        self.video_decoder.thread_type = "SLICE"  # as the runtime's decoder: frame threads would add latency
        self.audio_decoder: av.CodecContext | None = None
        self.frames = 0
        self.samples = 0

    def segment(self, data: bytes, on_frame_due=None, on_frame_out=None) -> None:
        """Transcode one segment. ``on_frame_due(pts)`` may block until a frame is due (real-time mode);
        ``on_frame_out(pts)`` is called as each encoded frame is muxed."""
        with av.open(io.BytesIO(data), format="mpegts") as container:
            streams = [s for s in (container.streams.video[:1] + container.streams.audio[:1])]
            if self.audio_decoder is None and container.streams.audio:
                self.audio_decoder = container.streams.audio[0].codec_context
            for packet in container.demux(*streams):
                if packet.size == 0:
                    continue
                if packet.stream.type == "video":
                    if on_frame_due is not None:
                        on_frame_due(packet.pts)
                    for frame in self.video_decoder.decode(packet):
                        self._encode_video(frame, on_frame_out)
                elif self.audio_decoder is not None:
                    for frame in self.audio_decoder.decode(packet):
                        self._encode_audio(frame)

    def _encode_video(self, frame: av.VideoFrame, on_frame_out) -> None:
        source_pts = frame.pts
        frame.pts, frame.time_base = self.frames * (TB.denominator // FPS), TB
        frame.pict_type = (
            av.video.frame.PictureType.I if self.frames % self.gop == 0 else av.video.frame.PictureType.NONE
        )
        self.frames += 1
        for packet in self.video.encode(frame):
            self.out.mux(packet)
            if on_frame_out is not None:
                on_frame_out(source_pts)

    def _encode_audio(self, frame: av.AudioFrame) -> None:
        frame.pts = None
        for chunk in self.resampler.resample(frame):
            chunk.pts, chunk.time_base = self.samples, AUDIO_TB
            self.samples += chunk.samples
            for packet in self.audio.encode(chunk):
                self.out.mux(packet)

    def close(self) -> None:
        self.out.close()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def throughput(clip: Clip, sessions: int, warmup: float, window: float) -> Measurement:
    """Each session transcodes the clip (looping) as fast as it can; fps over ``window`` after ``warmup``."""
    m = Measurement("floor", "throughput", clip.name, sessions, seconds=window)
    stop = threading.Event()
    times: list[list[float]] = [[] for _ in range(sessions)]

    def run(out: list[float]) -> None:
        transcoder = Transcoder(clip.width, clip.height)
        try:
            while not stop.is_set():
                for data in clip.segments:
                    if stop.is_set():
                        break
                    transcoder.segment(data, on_frame_out=lambda _pts: out.append(time.monotonic()))
        finally:
            transcoder.close()

    threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in times]
    begin = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(warmup)
    window_start, cpu_start = time.monotonic(), _cpu()
    time.sleep(window)
    window_end, cpu_end = time.monotonic(), _cpu()
    stop.set()
    for thread in threads:
        thread.join()
    del begin
    counts = [sum(1 for t in ts if window_start <= t < window_end) for ts in times]
    m.frames_out = sum(counts)
    m.frames_in = m.frames_out
    m.fps = m.frames_out / window
    m.fps_per_session = [c / window for c in counts]
    m.cpu_seconds = cpu_end - cpu_start
    return m


def latency(clip: Clip, sessions: int, seconds: int, skip: float) -> Measurement:
    """Real-time: each frame is decoded when it is due (as if its bytes just arrived), then encoded and muxed;
    latency is measured to the moment its encoded packet is muxed."""
    m = Measurement("floor", "latency", clip.name, sessions, seconds=float(seconds))
    first_pts = clip.pieces[0][0].pts
    seg_first = [pieces[0].pts for pieces in clip.pieces[:seconds]]
    t0 = time.monotonic() + 0.5
    results: list[list[tuple[int, float]]] = [[] for _ in range(sessions)]

    def run(session: int, out: list[tuple[int, float]]) -> None:
        start = t0 + session / sessions
        transcoder = Transcoder(clip.width, clip.height)

        def due(pts: int) -> None:
            time.sleep(max(0.0, start + (pts - first_pts) / TB.denominator - time.monotonic()))

        try:
            for data in clip.segments[:seconds]:
                transcoder.segment(data, on_frame_due=due, on_frame_out=lambda pts: out.append((pts, time.monotonic())))
        finally:
            transcoder.close()
        out.append((-1, start))  # this session's clock origin

    cpu_start = _cpu()
    threads = [threading.Thread(target=run, args=(i, r), daemon=True) for i, r in enumerate(results)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    m.cpu_seconds = _cpu() - cpu_start
    from_segment: list[float] = []
    added: list[float] = []
    for out in results:
        start = out.pop()[1]
        m.frames_in += sum(len(p) for p in clip.pieces[:seconds])
        m.frames_out += len(out)
        m.fps_per_session.append(len(out) / seconds)
        for pts, t in out:
            offset = (pts - first_pts) / TB.denominator
            if offset < skip:
                continue
            segment_start = max(s for s in seg_first if s <= pts)
            from_segment.append(t - (start + (segment_start - first_pts) / TB.denominator))
            added.append(t - (start + offset))
    m.fps = m.frames_out / seconds
    m.set_latency(from_segment, added)
    return m
