"""The input demuxer (``media.mpegts``) and the decoder on it (``media.decode``), on real PyAV/x264 streams as a
gateway sends them: a frame comes out of the decoder from the chunk that completed it, before the next chunk is
read (B-frames: after their reorder delay); timestamps are FFmpeg's own; damage costs only its segment."""

from __future__ import annotations

import asyncio
import contextlib
import io
import random
import time

import aiohttp
import av
import numpy as np
import pytest
from byoc_runtime import trickle
from byoc_runtime.media.decode import SegmentDecoder, SegmentReader, SegmentReport
from byoc_runtime.media.mpegts import Pes, ProgramTable, TsDemuxer
from byoc_testenv.devstream.gateway_media import GatewaySpec, GatewayStream, gateway_stream

from .crafted_media import mpeg2_segment
from .support import Stream, running_worker

SIXTY_AAC = GatewaySpec(width=854, height=480, fps=60, seconds=2.0, audio="aac")
OPUS = GatewaySpec(width=320, height=240, fps=30, seconds=2.0, audio="libopus")
B_FRAMES = GatewaySpec(width=854, height=480, fps=30, seconds=3.0, bframes=3, audio="aac")


# -- a reader that feeds the next chunk only when the decoder asks for it -----------------------------------


class SteppedReader(SegmentReader):
    """Feeds chunk k + 1 only when the decoder asks for more, so whatever it handed out before asking came from
    chunks 0..k alone. ``events`` records ("chunk", k) as each is fed and ("frame", kind, pts) as frames come."""

    def __init__(self, chunks: list[bytes], events: list[tuple], cut: bool = False) -> None:
        super().__init__()
        self._chunks_left = list(chunks)
        self._count = 0
        self._cut = cut
        self.events = events

    def read_chunk(self) -> bytes:
        if self._chunks_left:
            self.events.append(("chunk", self._count))
            self._count += 1
            self.feed(self._chunks_left.pop(0))
        else:
            self.finish(cut=self._cut)
        return super().read_chunk()


def decode_stepped(
    decoder: SegmentDecoder, chunks: list[bytes], events: list[tuple], cut: bool = False
) -> tuple[list[av.VideoFrame | av.AudioFrame], SegmentReport]:
    frames: list[av.VideoFrame | av.AudioFrame] = []

    def on_frame(frame: av.VideoFrame | av.AudioFrame) -> None:
        frames.append(frame)
        events.append(("frame", "video" if isinstance(frame, av.VideoFrame) else "audio", frame.pts))

    report = decoder.decode(SteppedReader(chunks, events, cut), on_frame)
    return frames, report


def video_out_before_each_chunk(events: list[tuple]) -> list[int]:
    """For each chunk fed, how many video frames had come out before it."""
    out, count = [], 0
    for event in events:
        if event[0] == "chunk":
            out.append(count)
        elif event[:2] == ("frame", "video"):
            count += 1
    return out


def end_marked(stream: GatewayStream, piece: bytes) -> bool:
    """Whether the video PES in ``piece`` (one frame's write) ends in a padded TS packet, the muxer's end mark;
    otherwise its payload filled the last packet exactly (1 in 184) and only the next PES start ends it."""
    with av.open(io.BytesIO(stream.data), format="mpegts") as probe:
        video_pid = probe.streams.video[0].id
    last = max(i for i in range(0, len(piece), 188) if ((piece[i + 1] & 0x1F) << 8) | piece[i + 2] == video_pid)
    return bool(piece[last + 3] & 0x20)  # an adaptation field: the muxer's stuffing


def expected_out_before_each_chunk(stream: GatewayStream, pieces: tuple[bytes, ...], depth: int) -> list[int]:
    """How many video frames the decoder can have handed out before each chunk is fed: a frame is complete with
    its own chunk when its end is marked, else with the next chunk; the decoder holds ``depth`` more to reorder."""
    complete_with = [k if end_marked(stream, piece) else k + 1 for k, piece in enumerate(pieces)]
    assert sum(c == k for k, c in enumerate(complete_with)) >= 0.9 * len(pieces)  # most frames have the mark
    return [max(0, sum(c < j for c in complete_with) - depth) for j in range(len(pieces))]


def reference(stream: GatewayStream) -> tuple[list[av.VideoFrame], list[int]]:
    """FFmpeg's own demux + decode of the whole stream: the video frames (with pixels) and the audio timestamps."""
    video, audio = [], []
    with av.open(io.BytesIO(stream.data), format="mpegts") as container:
        for frame in container.decode(*container.streams.video, *container.streams.audio):
            if isinstance(frame, av.VideoFrame):
                video.append(frame)
            else:
                audio.append(frame.pts)
    return video, audio


def same_picture(a: av.VideoFrame, b: av.VideoFrame) -> bool:
    return (a.width, a.height) == (b.width, b.height) and np.array_equal(a.to_ndarray(), b.to_ndarray())


# -- decoding: latency, order, timestamps -------------------------------------------------------------------


@pytest.mark.parametrize("spec", [SIXTY_AAC, OPUS], ids=["854x480-60fps-aac", "320x240-30fps-opus"])
def test_each_frame_is_decoded_before_the_next_chunk_is_read(spec: GatewaySpec) -> None:
    """Chunks as a live gateway writes them (a frame's PES and the audio after it): every video frame comes out
    of the decoder before the chunk after its own is fed; pictures and timestamps are FFmpeg's."""
    stream = gateway_stream(spec)
    ref_video, ref_audio = reference(stream)
    decoder = SegmentDecoder()
    video: list[av.VideoFrame] = []
    audio: list[int] = []
    for pieces in stream.pieces:
        events: list[tuple] = []
        frames, report = decode_stepped(decoder, list(pieces), events)
        assert report.ok and not report.errors, report
        # Before chunk k + 1 was fed, the frames of chunks 0..k were out (but one whose payload fills its last
        # packet exactly: that one comes out with the next).
        assert video_out_before_each_chunk(events) == expected_out_before_each_chunk(stream, pieces, 0)
        video += [f for f in frames if isinstance(f, av.VideoFrame)]
        audio += [f.pts for f in frames if isinstance(f, av.AudioFrame)]
    assert len(video) == stream.frames == len(ref_video)
    assert all(same_picture(a, b) and a.pts == b.pts for a, b in zip(video, ref_video, strict=True))
    assert {(f.width, f.height) for f in video} == {(spec.width, spec.height)}
    assert [f.time_base for f in video[:1]] == [ref_video[0].time_base]
    assert audio == ref_audio  # AAC: 8 frames per PES (ffmpeg's max_delay); each gets its exact timestamp


def test_b_frames_come_out_in_order_after_their_reorder_delay() -> None:
    """x264 with 3 B-frames and b-pyramid: the decoder's reorder delay is 2 frames (what the SPS declares), so
    after chunk k the frames up to k - 2 are out, in presentation order, and nothing waits longer."""
    stream = gateway_stream(B_FRAMES)
    ref_video, ref_audio = reference(stream)
    decoder = SegmentDecoder()
    video: list[av.VideoFrame] = []
    audio: list[int] = []
    depth = 2
    for n, pieces in enumerate(stream.pieces):
        events = []
        frames, report = decode_stepped(decoder, list(pieces), events)
        assert report.ok and not report.errors, report
        video += [f for f in frames if isinstance(f, av.VideoFrame)]
        audio += [f.pts for f in frames if isinstance(f, av.AudioFrame)]
        # The reorder buffer fills in segment 0; after that each frame in lets one out (the last `depth` of the
        # segment before come out first).
        assert video_out_before_each_chunk(events) == expected_out_before_each_chunk(
            stream, pieces, depth if n == 0 else 0
        )
    # The last `depth` frames of the stream wait in the decoder for frames that never come, until the end.
    assert len(video) == len(ref_video) - depth
    assert decoder.flush(video.append) == depth
    assert [f.pts for f in video] == sorted(f.pts for f in video)
    assert all(same_picture(a, b) and a.pts == b.pts for a, b in zip(video, ref_video, strict=True))
    assert audio == ref_audio


class SlowReader(SteppedReader):
    """A chunk every ``interval`` seconds, as a live gateway writes them."""

    def __init__(self, chunks: list[bytes], interval: float) -> None:
        super().__init__(chunks, [])
        self._interval = interval

    def read_chunk(self) -> bytes:
        time.sleep(self._interval)
        return super().read_chunk()


@pytest.mark.parametrize(("spec", "held"), [(B_FRAMES, True), (SIXTY_AAC, False)], ids=["b-frames", "no-b-frames"])
def test_the_decoder_reports_how_long_it_held_each_frame_to_reorder_it(spec: GatewaySpec, held: bool) -> None:
    """``video_reorder_s``: packet in -> its frame out. With B-frames most frames wait for the packets after them
    (a B-frame that is next in display order comes straight out); without, every frame comes out of the call its
    packet went in with."""
    interval = 0.02
    decoder = SegmentDecoder()
    holds: list[float] = []
    for pieces in gateway_stream(spec).pieces[:2]:
        report = decoder.decode(
            SlowReader(list(pieces), interval),
            lambda f: holds.append(decoder.video_reorder_s) if isinstance(f, av.VideoFrame) else None,
        )
        assert report.ok, report
    if held:
        assert sum(holds) / len(holds) >= interval and max(holds) >= 2 * interval * 0.9, holds
    else:
        assert max(holds) < interval / 2, holds


def test_segments_cut_mid_gop_decode_with_the_decoders_kept() -> None:
    """Segments that do not start on a keyframe (cut every 25 frames, GOP 30) decode with the codec context kept
    from the segment before: every frame, FFmpeg's pictures."""
    stream = gateway_stream(GatewaySpec(width=320, height=240, seconds=2.0, segment_frames=25, audio="libopus"))
    assert len(stream.segments) == 3
    ref_video, ref_audio = reference(stream)
    decoder = SegmentDecoder()
    video, audio = [], []
    for pieces in stream.pieces:
        frames, report = decode_stepped(decoder, list(pieces), [])
        assert report.ok and not report.errors, report
        video += [f for f in frames if isinstance(f, av.VideoFrame)]
        audio += [f.pts for f in frames if isinstance(f, av.AudioFrame)]
    assert all(same_picture(a, b) and a.pts == b.pts for a, b in zip(video, ref_video, strict=True))
    assert audio == ref_audio


def _lose_packets(segment: bytes) -> bytes:
    middle = (len(segment) // 2) // 188 * 188
    return segment[:middle] + segment[middle + 7 * 188 :]  # fewer than 16: continuity counters show it


def _overwrite(segment: bytes) -> bytes:
    middle = len(segment) // 2
    return segment[:middle] + random.Random(1).randbytes(3000) + segment[middle + 3000 :]


DAMAGE = {
    "cut": lambda segment: segment[: len(segment) // 2 + 77],
    "packets lost": _lose_packets,
    "overwritten": _overwrite,
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_segment_costs_only_itself(damage: str) -> None:
    """The middle segment of three is cut short, loses TS packets or has 3000 bytes overwritten: what comes out
    is in order and whole-sized, the segments around it decode exactly as FFmpeg decodes the clean stream, and
    the damage is reported for that segment only."""
    stream = gateway_stream(B_FRAMES)
    ref_video, _ = reference(stream)
    per = B_FRAMES.fps
    decoder = SegmentDecoder()
    video: list[av.VideoFrame] = []
    reports = []
    for n, segment in enumerate(stream.segments):
        data = DAMAGE[damage](segment) if n == 1 else segment
        chunks = [data[i : i + 1500] for i in range(0, len(data), 1500)]
        frames, report = decode_stepped(decoder, chunks, [], cut=n == 1 and damage == "cut")
        reports.append(report)
        video += [f for f in frames if isinstance(f, av.VideoFrame)]
    assert reports[0].ok and not reports[0].errors and reports[2].ok and not reports[2].errors
    assert reports[1].errors
    pts = [f.pts for f in video]
    assert pts == sorted(set(pts)) and {(f.width, f.height) for f in video} == {(854, 480)}
    by_pts = {f.pts: f for f in video}
    around = ref_video[:per] + ref_video[2 * per : -2]  # segments 0 and 2 (less the 2 frames a reorder holds)
    assert all(r.pts in by_pts and same_picture(by_pts[r.pts], r) for r in around)


def test_streams_refused_by_their_program_table() -> None:
    decoder = SegmentDecoder()
    frames, report = decode_stepped(decoder, [mpeg2_segment()], [])
    assert frames == [] and report.refused is not None and "mpeg2video is not accepted" in report.refused
    opus_51 = _opus_table(channel_config=6)
    frames, report = decode_stepped(decoder, [opus_51], [])
    assert report.refused is not None and "Opus channel configuration 6" in report.refused


# -- the demuxer on its own ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [B_FRAMES, OPUS], ids=["b-frames-aac", "opus"])
def test_demuxer_gives_ffmpegs_packets_in_any_split(spec: GatewaySpec) -> None:
    """Fed in random pieces (TS packets split anywhere), the demuxer's PES payloads and PTS/DTS are exactly the
    packets FFmpeg's demuxer makes (without its parser)."""
    stream = gateway_stream(spec)
    expected = []
    with av.open(io.BytesIO(stream.data), format="mpegts", options={"fflags": "+noparse"}) as container:
        for packet in container.demux():
            if packet.size:
                expected.append((packet.stream.type, packet.pts, packet.dts, bytes(packet)))
    demuxer = TsDemuxer()
    rng = random.Random(7)
    events = []
    i = 0
    while i < len(stream.data):
        step = rng.randint(1, 3000)
        events += demuxer.feed(stream.data[i : i + step])
        if rng.random() < 0.5:
            events += demuxer.chunk_end()
        i += step
    events += demuxer.end()
    assert not demuxer.errors
    tables = [e for e in events if isinstance(e, ProgramTable)]
    assert len(tables) == 1 and tables[0].video is not None and tables[0].audio is not None
    kind = {tables[0].video.pid: "video", tables[0].audio.pid: "audio"}
    got = [(kind[e.pid], e.pts, e.dts if e.dts is not None else e.pts, e.data) for e in events if isinstance(e, Pes)]
    assert sorted(got, key=lambda g: (g[0], g[2])) == sorted(expected, key=lambda g: (g[0], g[2]))


# Hand-made TS for the cases a muxer rarely produces: a checked, independent packet writer.


def _crc(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = (crc << 1) ^ 0x104C11DB7 if crc & 0x80000000 else crc << 1
    return crc & 0xFFFFFFFF


def _section(table_id: int, ext: int, body: bytes) -> bytes:
    head = bytes([table_id, 0xB0 | ((len(body) + 9) >> 8), (len(body) + 9) & 0xFF, ext >> 8, ext & 0xFF, 0xC1, 0, 0])
    section = head + body
    return section + _crc(section).to_bytes(4, "big")


def _ts(pid: int, cc: int, payload: bytes, start: bool = False, pad: bool = True) -> bytes:
    """One TS packet; a short payload is padded with adaptation-field stuffing (``pad=False``: in the payload,
    which only PSI may do)."""
    header = bytes([0x47, (0x40 if start else 0) | pid >> 8, pid & 0xFF])
    room = 184 - len(payload)
    if room and pad:
        af = bytes([room - 1]) + (b"\x00" + b"\xff" * (room - 2) if room > 1 else b"")
        return header + bytes([0x30 | cc]) + af + payload
    return header + bytes([0x10 | cc]) + payload + b"\xff" * room


def _psi(pid: int, section: bytes) -> bytes:
    return _ts(pid, 0, b"\x00" + section, start=True, pad=False)


def _tables(stream_type: int = 0x1B, descriptors: bytes = b"") -> bytes:
    pat = _section(0x00, 1, b"\x00\x01\xf0\x00")  # program 1 -> PMT PID 0x1000
    es = bytes([stream_type, 0xE1, 0x00, 0xF0 | len(descriptors) >> 8, len(descriptors) & 0xFF]) + descriptors
    pmt = _section(0x02, 1, b"\xe1\x00\xf0\x00" + es)  # PCR PID 0x100, no program info, one stream on 0x100
    return _psi(0x0000, pat) + _psi(0x1000, pmt)


def _opus_table(channel_config: int) -> bytes:
    return _tables(0x06, b"\x05\x04Opus" + bytes([0x7F, 0x02, 0x80, channel_config]))


def _pes(pts: int, payload: bytes, length: bool = False) -> bytes:
    stamp = bytes(
        [
            0x21 | (pts >> 29) & 0x0E,
            (pts >> 22) & 0xFF,
            0x01 | (pts >> 14) & 0xFE,
            (pts >> 7) & 0xFF,
            0x01 | pts << 1 & 0xFE,
        ]
    )
    header = b"\x80\x80\x05" + stamp
    size = len(header) + len(payload) if length else 0
    return b"\x00\x00\x01\xe0" + size.to_bytes(2, "big") + header + payload


def _packets(pid: int, pes: bytes, cc: int = 0) -> list[bytes]:
    return [_ts(pid, (cc + n) & 15, pes[i : i + 184], start=i == 0) for n, i in enumerate(range(0, len(pes), 184))]


def test_a_pes_is_handed_out_at_a_chunk_end_only_once_its_padded_end_is_in() -> None:
    demuxer = TsDemuxer()
    assert [type(e) for e in demuxer.feed(_tables())] == [ProgramTable]
    first = _packets(0x100, _pes(9000, b"\x01" * 400))  # three packets, the last one padded
    assert demuxer.feed(b"".join(first[:2])) == [] and demuxer.chunk_end() == []  # not its end yet
    assert demuxer.feed(first[2][:100]) == [] and demuxer.chunk_end() == []  # its last packet is half in
    assert demuxer.feed(first[2][100:]) == []
    (pes,) = demuxer.chunk_end()
    assert (pes.pts, pes.data) == (9000, b"\x01" * 400)
    # A payload that fills its last packet exactly has no end mark: it waits for the next PES, as in FFmpeg.
    exact = _packets(0x100, _pes(12000, b"\x02" * (2 * 184 - 14)), cc=3)
    assert demuxer.feed(b"".join(exact)) == [] and demuxer.chunk_end() == []
    (pes,) = demuxer.feed(_packets(0x100, _pes(15000, b"\x03"), cc=5)[0])
    assert (pes.pts, pes.data) == (12000, b"\x02" * (2 * 184 - 14))
    (last,) = demuxer.end()
    assert (last.pts, last.data, demuxer.errors) == (15000, b"\x03", [])


def test_a_pes_with_a_length_is_handed_out_as_soon_as_it_is_complete() -> None:
    demuxer = TsDemuxer()
    demuxer.feed(_tables())
    (pes,) = demuxer.feed(b"".join(_packets(0x100, _pes(3000, b"\x07" * 300, length=True))))
    assert isinstance(pes, Pes) and pes.data == b"\x07" * 300  # at once: no chunk end, no next PES needed


def test_a_muxer_that_pads_inside_a_pes_loses_the_early_hand_out() -> None:
    demuxer = TsDemuxer()
    demuxer.feed(_tables())
    pes = _pes(3000, b"\x05" * 200)
    odd = [_ts(0x100, 0, pes[:100], start=True), _ts(0x100, 1, pes[100:])]  # padded, then more of the same PES
    demuxer.feed(odd[0])
    assert [p.data for p in demuxer.chunk_end()] == [pes[14:100]]  # taken for its end (the decoder gets it cut)
    demuxer.feed(odd[1])
    assert any("went on after a padded packet" in e for e in demuxer.errors)
    demuxer.feed(b"".join(_packets(0x100, _pes(6000, b"\x06" * 10), cc=2)))
    assert demuxer.chunk_end() == []  # from now on this PID waits for the next PES start
    assert [p.pts for p in demuxer.end()] == [6000]


def test_continuity_counters_that_start_over_or_repeat() -> None:
    """A muxer restarting inside one segment (its counters start over, and may repeat the last one seen) loses
    nothing; a packet sent twice is taken once."""
    demuxer = TsDemuxer()
    demuxer.feed(_tables())
    first = _packets(0x100, _pes(3000, b"\x01" * 300))  # counters 0, 1
    again = _packets(0x100, _pes(6000, b"\x02" * 300), cc=1)  # starts over at 1: the last counter seen
    events = demuxer.feed(b"".join(first) + first[1] + _tables() + b"".join(again))  # first[1] twice
    events += demuxer.end()
    assert [(p.pts, p.data) for p in events if isinstance(p, Pes)] == [(3000, b"\x01" * 300), (6000, b"\x02" * 300)]
    assert demuxer.errors == []


def test_damage_is_dropped_and_reported() -> None:
    demuxer = TsDemuxer()
    tables = bytearray(_tables())
    tables[188 + 20] ^= 0xFF  # the PMT's CRC no longer holds
    assert demuxer.feed(bytes(tables)) == [] and any("CRC" in e for e in demuxer.errors)
    demuxer = TsDemuxer()
    demuxer.feed(_tables())
    lost = _packets(0x100, _pes(3000, b"\x01" * 600))
    good = _packets(0x100, _pes(6000, b"\x02" * 10), cc=4) + _packets(0x100, _pes(9000, b"\x03" * 10), cc=5)
    events = demuxer.feed(lost[0] + lost[2] + lost[3] + b"\x00" * 50 + b"".join(good))  # packet 1 lost; junk
    assert [p.pts for p in events if isinstance(p, Pes)] == [6000] and [p.pts for p in demuxer.chunk_end()] == [9000]
    assert any("lost or broken" in e for e in demuxer.errors) and any("sync" in e for e in demuxer.errors)


# -- through a worker and a real trickle server --------------------------------------------------------------


def _video_pes_starts(data: bytes) -> list[int]:
    """PTS of each video PES (stream id 0xE0-0xEF) starting in these whole TS packets."""
    found = []
    for i in range(0, len(data) - 187, 188):
        if not data[i + 1] & 0x40:
            continue
        start = i + 4 + (1 + data[i + 4] if data[i + 3] & 0x20 else 0)
        head = data[start : start + 14]
        if head[:3] == b"\x00\x00\x01" and 0xE0 <= head[3] <= 0xEF and head[7] & 0x80:
            p = head[9:14]
            found.append(((p[0] >> 1) & 7) << 30 | p[1] << 22 | (p[2] >> 1) << 15 | p[3] << 7 | p[4] >> 1)
    return found


@pytest.mark.trickle
async def test_a_worker_sends_each_frame_out_before_the_next_one_comes_in(trickle_server) -> None:
    """A passthrough worker on a real trickle server, fed one frame's bytes per write: each frame starts arriving
    on the output channel before the next frame is published (the input demuxer holds nothing back), with the
    input's timestamps."""
    stream_in = gateway_stream(GatewaySpec(width=320, height=240, fps=30, seconds=2.0, audio=None))
    out_pts: list[int] = []
    arrived = asyncio.Condition()
    async with running_worker("passthrough") as rt, aiohttp.ClientSession() as http:
        await rt.wait_health("IDLE")
        stream = Stream.create(trickle_server, "demux")

        async def read_output() -> None:
            async with trickle.Subscriber(stream.url("-out"), session=http) as sub:
                async for segment in sub:
                    rest = b""
                    with contextlib.suppress(trickle.SegmentError):
                        async for chunk in segment.iter_chunks():
                            data = rest + chunk
                            whole = len(data) - len(data) % 188
                            rest = data[whole:]
                            async with arrived:
                                out_pts.extend(_video_pes_starts(data[:whole]))
                                arrived.notify_all()

        reader = asyncio.create_task(read_output())
        publisher = trickle.Publisher(stream.url(), mime_type="video/mp2t", session=http)
        try:
            status, body = await rt.post(
                "/stream/start", json=stream.start_body({"width": 320, "height": 240, "max_framerate": 60})
            )
            assert status == 200, body
            sent: list[int] = []
            for n, pieces in enumerate(stream_in.pieces):
                async with publisher.segment() as writer:
                    for k, piece in enumerate(pieces):
                        await writer.write(piece)
                        sent += _video_pes_starts(piece)
                        # A frame without the end mark is complete only once the next one starts (in the next write).
                        due = len(sent) if end_marked(stream_in, piece) else len(sent) - 1
                        async with arrived:
                            try:
                                await asyncio.wait_for(arrived.wait_for(lambda due=due: len(out_pts) >= due), 15)
                            except TimeoutError:
                                pytest.fail(f"segment {n} frame {k} did not come out before the next was sent")
            assert out_pts == sent == sorted(sent)
        finally:
            await publisher.close(delete=True)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await stream.close()
