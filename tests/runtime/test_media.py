"""Real PyAV encode/decode of the synthetic stream: segments, keyframes, timing, damage, changes."""

from __future__ import annotations

import io
import itertools
import threading
from fractions import Fraction

import av
import numpy as np
import pytest
from byoc_runtime.media.decode import FrameRateLimiter, SegmentDecoder, SegmentReader
from byoc_runtime.media.encode import BufferedSink, EncoderSettings, SegmentEncoder, collect_segments
from byoc_runtime.queues import Pacer

from .support import beep_onsets, decode_segments, flash_times


def decode_all(decoder: SegmentDecoder, data: bytes, chunk: int = 4096) -> tuple[list, object]:
    reader = SegmentReader()
    frames: list = []

    def feed() -> None:
        for offset in range(0, len(data), chunk):
            reader.feed(data[offset : offset + chunk])
        reader.finish()

    thread = threading.Thread(target=feed)
    thread.start()
    report = decoder.decode(reader, frames.append)
    thread.join()
    return frames, report


def reference_timestamps(data: bytes) -> dict[str, list[int]]:
    """Frame timestamps (90 kHz) as FFmpeg's own demuxer and decoders give them for a whole stream."""
    out: dict[str, list[int]] = {"video": [], "audio": []}
    with av.open(io.BytesIO(data), format="mpegts") as container:
        for frame in container.decode(*container.streams.video, *container.streams.audio):
            out["video" if isinstance(frame, av.VideoFrame) else "audio"].append(frame.pts)
    return out


@pytest.mark.parametrize("audio", ["libopus", "aac"])
def test_source_segments_are_h264_and_audio_mpegts(make_segments, audio: str) -> None:
    segments = make_segments(seconds=3, audio_codec=audio)
    assert len(segments) == 3
    decoded = decode_segments(segments)
    assert decoded.video_codecs == {"h264"} and decoded.audio_codecs == {audio.removeprefix("lib")}
    assert len(decoded.video) == 90 and all(decoded.keyframe_first)
    assert abs(sum(len(s) for _, s in decoded.audio) / 48000 - 3.0) < 0.1


def test_segments_start_with_keyframes_at_gop_boundaries() -> None:
    sink = BufferedSink()
    encoder = SegmentEncoder(sink, EncoderSettings(gop_seconds=0.5, preset="ultrafast"))
    for i in range(45):
        frame = av.VideoFrame.from_ndarray(np.full((64, 96, 3), i * 5, np.uint8), format="rgb24")
        encoder.encode_video(frame, i * 3000, Fraction(1, 90000))
    encoder.close()
    segments = collect_segments(sink.drain())
    assert len(segments) == 3
    decoded = decode_segments(segments)
    assert all(decoded.keyframe_first)
    assert [round(t, 3) for t, _ in decoded.video][::15] == [0.0, 0.5, 1.0]


def test_output_size_follows_frames_and_starts_a_new_segment() -> None:
    sink = BufferedSink()
    encoder = SegmentEncoder(sink, EncoderSettings(gop_seconds=10, preset="ultrafast"))
    for i, size in enumerate([(64, 48)] * 5 + [(97, 33)] * 5):  # odd sizes are trimmed to even
        frame = av.VideoFrame.from_ndarray(np.zeros((size[1], size[0], 3), np.uint8), format="rgb24")
        encoder.encode_video(frame, i * 3000, Fraction(1, 90000))
    encoder.close()
    segments = collect_segments(sink.drain())
    assert len(segments) == 2
    sizes = [f.shape[:2] for _, f in decode_segments(segments).video]
    assert sizes == [(48, 64)] * 5 + [(32, 96)] * 5


def test_timestamp_jump_back_keeps_output_monotonic() -> None:
    sink = BufferedSink()
    encoder = SegmentEncoder(sink, EncoderSettings(gop_seconds=1, preset="ultrafast"))
    timestamps = [i * 3000 for i in range(30)] + [i * 3000 for i in range(30)]  # input restarts at 0
    for ts in timestamps:
        encoder.encode_video(
            av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24"), ts, Fraction(1, 90000)
        )
    encoder.close()
    times = [t for t, _ in decode_segments(collect_segments(sink.drain())).video]
    assert len(times) == 60 and all(b > a for a, b in itertools.pairwise(times))


def test_streaming_decode_keeps_decoders_across_segments(make_segments) -> None:
    decoder = SegmentDecoder()
    total_video = total_audio = 0
    for segment in make_segments(seconds=3, audio_codec="libopus"):
        frames, report = decode_all(decoder, segment, chunk=1500)
        assert report.ok and report.video_codec == "h264" and report.audio_codec == "opus"
        total_video += sum(isinstance(f, av.VideoFrame) for f in frames)
        total_audio += sum(isinstance(f, av.AudioFrame) for f in frames)
    assert total_video == 90 and total_audio >= 140


def test_damaged_segments_never_raise(make_segments) -> None:
    good = make_segments(seconds=2, audio_codec="libopus")
    decoder = SegmentDecoder()
    truncated, report = decode_all(decoder, good[0][: len(good[0]) // 3])
    assert not report.errors or truncated is not None
    garbage, report = decode_all(decoder, b"\x47" + bytes(range(256)) * 50)
    assert garbage == [] and not report.ok
    corrupt = bytearray(good[1])
    corrupt[2000:6000] = b"\xff" * 4000
    frames, _ = decode_all(decoder, bytes(corrupt))
    assert len(frames) > 10
    empty, report = decode_all(decoder, b"")
    assert empty == []
    frames, report = decode_all(decoder, good[1])  # and the decoder still works afterwards
    assert report.ok and sum(isinstance(f, av.VideoFrame) for f in frames) == 30


def test_a_stream_appearing_mid_segment_is_decoded_from_its_table_on(make_segments) -> None:
    """A program change inside one segment (here: video only, then video and audio, from another muxer whose
    continuity counters start over): the new table applies from where it appears and nothing is lost."""
    decoder = SegmentDecoder()
    video_only = make_segments(seconds=1, audio_codec=None)[0]
    with_audio = make_segments(seconds=1, audio_codec="aac", start_seconds=1)[0]
    frames, report = decode_all(decoder, video_only + with_audio)
    assert report.ok, report
    video = [f.pts for f in frames if isinstance(f, av.VideoFrame)]
    assert video == [i * 3000 for i in range(60)]
    audio = [f.pts for f in frames if isinstance(f, av.AudioFrame)]
    assert audio == reference_timestamps(with_audio)["audio"]
    frames, report = decode_all(decoder, with_audio)  # and the next segment decodes
    assert report.ok and any(isinstance(f, av.AudioFrame) for f in frames)


def test_codec_and_resolution_change_between_segments(make_segments) -> None:
    decoder = SegmentDecoder()
    first, _ = decode_all(decoder, make_segments(seconds=1, width=320, height=240, audio_codec="libopus")[0])
    second, report = decode_all(
        decoder, make_segments(seconds=1, width=160, height=96, audio_codec="aac", start_seconds=1)[0]
    )
    assert report.audio_codec == "aac"
    assert {(f.width, f.height) for f in first if isinstance(f, av.VideoFrame)} == {(320, 240)}
    assert {(f.width, f.height) for f in second if isinstance(f, av.VideoFrame)} == {(160, 96)}
    assert any(isinstance(f, av.AudioFrame) for f in second)


def test_reader_abort_unblocks() -> None:
    reader = SegmentReader()
    result: list[bytes] = []
    thread = threading.Thread(target=lambda: result.append(reader.read_chunk()))
    thread.start()
    reader.abort()
    thread.join(2)
    assert result == [b""]


def test_frame_rate_limiter_like_pytrickle() -> None:
    limiter = FrameRateLimiter(15)
    accepted = [limiter.accept(i / 30) for i in range(30)]
    assert sum(accepted) == 15
    assert limiter.accept(100.0)  # a jump resyncs
    assert limiter.accept(1.0)  # so does the clock going back


def test_pacer_spreads_bursts_and_passes_paced_input() -> None:
    paced = Pacer()
    assert all(abs(paced.release_at(i / 30, 10 + i / 30) - (10 + i / 30)) < 1e-9 for i in range(60))
    bursty = Pacer()
    releases = []
    for segment in range(3):  # each 1 s segment arrives whole, when it is complete
        arrival = 10 + segment + 1
        releases += [bursty.release_at(segment + i / 30, arrival) for i in range(30)]
    gaps = np.diff(releases)
    assert np.allclose(gaps[30:], 1 / 30)  # once the delay adapted, frames leave at the source pace
    jumped = bursty.release_at(1000.0, 14.0)
    assert jumped == 14.0  # a timestamp jump re-anchors instead of waiting ~1000 s


def test_pacer_does_not_hold_paced_input_with_jitter() -> None:
    pacer = Pacer()
    rng = np.random.default_rng(1)
    arrivals = [10 + i / 30 + rng.uniform(0.0, 0.06) for i in range(150)]  # decode jitter up to 60 ms
    releases = [pacer.release_at(i / 30, arrival) for i, arrival in enumerate(arrivals)]
    held = np.array(releases) - np.maximum.accumulate(arrivals)
    assert np.all(held[30:] < 1e-9)  # once seen paced: due on arrival (or with the frame before it, in order)
    assert np.all(held < 0.07)


def test_pacer_release_times_never_go_back() -> None:
    pacer = Pacer(window=5.0, max_hold=2.0)
    # A 3 s burst (a gateway catching up after a stall): lags grow past max_hold, which re-anchors.
    releases = [pacer.release_at(i / 30, 10.0) for i in range(90)]
    releases += [pacer.release_at(3 + i / 30, 10.0 + i / 30) for i in range(30)]
    # The largest lag leaving the window: later frames arrive with small lags while big ones expire.
    big = Pacer(window=1.0, max_hold=2.0)
    releases_big = [big.release_at(0.0, 1.5)]  # lag 1.5
    releases_big += [big.release_at(i / 30, 0.1 + i / 30) for i in range(1, 90)]  # lag 0.1
    for series in (releases, releases_big):
        assert all(np.diff(series) >= 0)
    jumped_back = pacer.release_at(0.0, 11.0)  # timestamps going back re-anchor but never release earlier
    assert jumped_back >= releases[-1]


def test_audio_and_video_stay_in_sync_through_encoder(make_segments) -> None:
    decoded = decode_segments(make_segments(seconds=3, audio_codec="libopus", flash_every=1.0))
    flashes = flash_times(decoded)
    beeps = beep_onsets(decoded)
    assert len(flashes) == 3 and len(beeps) == 3
    assert all(abs(f - b) < 0.05 for f, b in zip(flashes, beeps, strict=True))
