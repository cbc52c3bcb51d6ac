"""The output muxer (``media.tsmux``) behind ``SegmentEncoder``: a video frame is out as soon as it is encoded
(it does not wait for the next audio packet, as FFmpeg's interleaving muxer made it), and what comes out is
MPEG-TS that FFmpeg's demuxer and decoders and our own demuxer read with the encoder's exact timestamps."""

from __future__ import annotations

import io
import itertools
from fractions import Fraction

import av
import numpy as np
import pytest
from byoc_runtime.media.encode import BufferedSink, EncoderSettings, SegmentBoundary, SegmentEncoder, collect_segments
from byoc_runtime.media.mpegts import PACKET_SIZE, Pes, ProgramTable, TsDemuxer
from byoc_runtime.media.tsmux import AudioCodec, TsMuxer, tracks

TB = Fraction(1, 90_000)
AUDIO_TB = Fraction(1, 48_000)


def _video(i: int) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.full((64, 96, 3), (i * 7) % 255, np.uint8), format="rgb24")


def _audio(start_sample: int, samples: int = 960) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(np.zeros((1, samples * 2), np.int16), format="s16", layout="stereo")
    frame.sample_rate = 48_000
    frame.pts, frame.time_base = start_sample, AUDIO_TB
    return frame


def _video_pts(parts: list[bytes | SegmentBoundary], demuxer: TsDemuxer) -> list[int]:
    """The video PES our demuxer hands out from these bytes (each write taken as a chunk, as a reader sees it)."""
    found: list[int] = []
    for part in parts:
        if isinstance(part, bytes):
            events = demuxer.feed(part) + list(demuxer.chunk_end())
            video = demuxer.program.video if demuxer.program else None
            found += [e.pts for e in events if isinstance(e, Pes) and video is not None and e.pid == video.pid]
    return [p for p in found if p is not None]


@pytest.mark.parametrize("audio_codec", ["libopus", "aac"])
def test_a_video_frame_is_written_before_the_next_audio_packet_is_pushed(audio_codec: str) -> None:
    """Live input: per frame interval the audio up to the frame's time, then the frame. Each frame's bytes must be
    in the output when ``encode_video`` returns; FFmpeg's interleaver held each until audio reached its time."""
    sink = BufferedSink()
    encoder = SegmentEncoder(sink, EncoderSettings(gop_seconds=1, preset="ultrafast", audio_codec=audio_codec))
    encoder.expect_audio()
    demuxer = TsDemuxer()
    next_sample = 0
    for i in range(45):
        pts = i * 3000
        while next_sample + 960 <= pts * 48_000 // 90_000:  # the audio before this frame, none after it
            encoder.encode_audio(_audio(next_sample), next_sample, AUDIO_TB)
            next_sample += 960
        encoder.encode_video(_video(i), pts, TB)
        assert _video_pts(sink.drain(), demuxer)[-1:] == [pts], f"frame {i} not out when encoded"
    encoder.close()


@pytest.mark.parametrize(("audio_codec", "name", "channels"), [("libopus", "opus", 2), ("aac", "aac", 2)])
def test_ffmpeg_reads_the_output_with_the_encoders_timestamps(audio_codec: str, name: str, channels: int) -> None:
    sink = BufferedSink()
    encoder = SegmentEncoder(sink, EncoderSettings(gop_seconds=0.5, preset="ultrafast", audio_codec=audio_codec))
    encoder.expect_audio()
    for i in range(60):
        encoder.encode_audio(_audio(i * 1600, 1600), i * 1600, AUDIO_TB)
        encoder.encode_video(_video(i), 1_000_000 + i * 3000, TB)  # input timestamps need not start at 0
    encoder.close()
    segments = collect_segments(sink.drain())
    assert len(segments) == 4 and all(len(s) % PACKET_SIZE == 0 for s in segments)
    video: list[int] = []
    audio_samples = 0
    for segment in segments:  # every segment on its own, as a trickle subscriber may read it
        with av.open(io.BytesIO(segment), format="mpegts") as container:
            assert container.streams.audio[0].codec_context.name == name
            assert container.streams.audio[0].codec_context.channels == channels
            first = True
            for frame in container.decode(*container.streams.video, *container.streams.audio):
                if isinstance(frame, av.VideoFrame):
                    assert not first or frame.key_frame, "a segment starts with a keyframe"
                    first = False
                    video.append(frame.pts)
                else:
                    audio_samples += frame.samples
    assert video == [1_000_000 + i * 3000 for i in range(60)]
    assert abs(audio_samples - 60 * 1600) <= 2 * 1024  # the encoder's own delay at the end


def test_packets_carry_continuity_pcr_and_random_access_our_demuxer_reads() -> None:
    muxer = TsMuxer()
    streams = tracks(True, AudioCodec("opus", 2))
    out = muxer.program(streams)
    keyframe = b"\x00\x00\x00\x01\x67" + bytes(400)  # an SPS NAL first: the muxer puts an AUD before it
    out += muxer.video(keyframe, pts=9000, dts=6000, keyframe=True)
    out += muxer.audio(bytes(255), pts=9100)  # au_size 255 is written as 255, 0
    out += muxer.video(b"\x00\x00\x01\x09\xf0\x00\x00\x01\x41" + bytes(184 - 23), pts=12000, dts=None, keyframe=False)
    out += muxer.program(streams)  # a second segment: counters go on
    out += muxer.video(b"\x00\x00\x00\x01\x41" + bytes(10), pts=15000, dts=None, keyframe=False)
    assert len(out) % PACKET_SIZE == 0
    packets = [out[k : k + PACKET_SIZE] for k in range(0, len(out), PACKET_SIZE)]
    counters: dict[int, list[int]] = {}
    for p in packets:
        counters.setdefault((p[1] & 0x1F) << 8 | p[2], []).append(p[3] & 0x0F)
    assert all(b == (a + 1) % 16 for cc in counters.values() for a, b in itertools.pairwise(cc))
    first_video = next(p for p in packets if (p[1] & 0x1F) << 8 | p[2] == 0x100)
    assert first_video[3] & 0x20 and first_video[5] & 0x50 == 0x50  # adaptation field: random access + PCR
    pcr = first_video[6] << 25 | first_video[7] << 17 | first_video[8] << 9 | first_video[9] << 1 | first_video[10] >> 7
    assert pcr == 6000  # = the DTS

    demuxer = TsDemuxer()
    events = demuxer.feed(out) + demuxer.end()
    assert not demuxer.errors
    table = next(e for e in events if isinstance(e, ProgramTable))
    assert table.video is not None and table.video.codec == "h264"
    assert table.audio is not None and table.audio.codec == "opus" and table.audio.opus_channel_config == 2
    pes = sorted((e for e in events if isinstance(e, Pes)), key=lambda e: e.pts or 0)
    assert [(e.pid, e.pts, e.dts) for e in pes] == [  # DTS is written only where it differs from PTS
        (0x100, 9000, 6000),
        (0x101, 9100, None),
        (0x100, 12000, None),
        (0x100, 15000, None),
    ]
    assert pes[0].data == b"\x00\x00\x00\x01\x09\xf0" + keyframe and pes[0].random_access
    assert pes[1].data == b"\x7f\xe0\xff\x00" + bytes(255)
    assert pes[2].data.startswith(b"\x00\x00\x01\x09\xf0") and len(pes[2].data) == 184 - 14
    assert pes[3].data.startswith(b"\x00\x00\x00\x01\x09\xf0\x00\x00\x00\x01\x41")


def test_unmapped_audio_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="6 channels"):
        tracks(True, AudioCodec("opus", 6))
    with pytest.raises(ValueError, match="mp3"):
        tracks(True, AudioCodec("mp3", 2))
