"""Input sources: generated test video, or a file cut into segments."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from .mpegts import PTS_HZ


def generated_segments(width: int, height: int, seconds: float, fps: int = 30) -> list[bytes]:
    """The runtime's synthetic source: colour bars, moving box, flash + beep each second (H.264 + Opus)."""
    from byoc_runtime.media.testsource import SourceSpec, generate_segments

    return generate_segments(SourceSpec(width=width, height=height, fps=fps, seconds=seconds))


def file_segments(path: Path, seconds: float, segment_seconds: float = 1.0) -> list[bytes]:
    """Transcode the first ``seconds`` of a media file into 1 s MPEG-TS segments (H.264 no B-frames + Opus)."""
    import av
    from byoc_runtime.media.encode import BufferedSink, EncoderSettings, SegmentEncoder, collect_segments

    sink = BufferedSink()
    encoder = SegmentEncoder(sink, EncoderSettings(gop_seconds=segment_seconds, preset="ultrafast"))
    tb = Fraction(1, PTS_HZ)
    with av.open(str(path)) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        if video is None:
            raise ValueError(f"{path} has no video stream")
        if audio is not None:
            encoder.expect_audio()
        start: float | None = None
        for packet in container.demux(*[s for s in (video, audio) if s is not None]):
            for frame in packet.decode():
                if not isinstance(frame, (av.VideoFrame, av.AudioFrame)) or frame.time is None:
                    continue
                if start is None:
                    start = frame.time
                t = frame.time - start
                if t < 0 or t >= seconds:
                    continue
                if isinstance(frame, av.VideoFrame):
                    encoder.encode_video(frame, round(t * PTS_HZ), tb)
                else:
                    encoder.encode_audio(frame, round(t * PTS_HZ), tb)
    encoder.close()
    return collect_segments(sink.drain())
