"""MPEG-TS muxing for live output: PAT/PMT, one PES per encoded packet, written the moment it is handed in.

Why not FFmpeg's muxer: ``av_interleaved_write_frame`` (the only write PyAV offers) keeps a packet until every
stream has one at or after its timestamp, so each video frame waited for the next 20 ms Opus packet to be
encoded (``max_interleave_delta=0``; a positive delta still keeps the last packet of a stream until that
stream's next one). Here nothing is buffered: a frame's TS packets are out as soon as it is encoded. MPEG-TS
does not need its streams interleaved in timestamp order, only each stream in its own order (the encoder's).

The layout is FFmpeg's (``mpegtsenc.c`` defaults, which go-livepeer's and FFmpeg's readers take): PMT on PID
0x1000, program 1, streams from PID 0x100, video PES stream_id 0xE0 without a length, Opus as private PES
(0xBD) with the ``Opus`` registration and DVB extension descriptors, each packet behind the Opus-in-TS control
header (0x7FE0, then its size in steps of 255), AAC as ADTS (stream_type 0x0F, stream_id 0xC0), an access unit
delimiter before each H.264 access unit that lacks one, PCR on the first TS packet of each video frame (of each
audio packet when there is no video) equal to its DTS, random_access_indicator on keyframes, the last TS packet
of a PES padded with adaptation-field stuffing (which ``mpegts.TsDemuxer`` reads as the PES's end).

Pure: packets in, bytes out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .mpegts import PACKET_SIZE, PAT_PID, SYNC, crc32

PMT_PID = 0x1000
FIRST_STREAM_PID = 0x100
PROGRAM = 1
TRANSPORT_STREAM_ID = 1
_PAYLOAD = PACKET_SIZE - 4
_TS_MASK = (1 << 33) - 1
_H264_AUD = b"\x00\x00\x00\x01\x09\xf0"  # access unit delimiter, any slice type

TrackKind = Literal["h264", "opus", "aac"]


@dataclass(frozen=True, slots=True)
class Track:
    kind: TrackKind
    pid: int
    channels: int = 0  # audio
    aac_config: bytes = b""  # AAC only: the encoder's AudioSpecificConfig (its extradata)


@dataclass(frozen=True, slots=True)
class AudioCodec:
    """The audio encoder's output as the muxer needs to describe it."""

    name: str  # FFmpeg's codec name: "opus" or "aac"
    channels: int
    extradata: bytes = b""


def tracks(video: bool, audio: AudioCodec | None) -> tuple[Track, ...]:
    """The tracks of a segment: H.264 first (the PCR stream), then audio, PIDs counted from 0x100 as FFmpeg does."""
    out: list[Track] = []
    if video:
        out.append(Track("h264", FIRST_STREAM_PID))
    if audio is not None:
        pid = FIRST_STREAM_PID + len(out)
        if audio.name == "opus":
            if audio.channels not in (1, 2):
                raise ValueError(f"Opus in MPEG-TS with {audio.channels} channels needs a mapping table; 1 or 2 only")
            out.append(Track("opus", pid, audio.channels))
        elif audio.name == "aac":
            if len(audio.extradata) < 2:
                raise ValueError("AAC without an AudioSpecificConfig")
            out.append(Track("aac", pid, audio.channels, audio.extradata))
        else:
            raise ValueError(f"no MPEG-TS mapping here for {audio.name} audio (Opus or AAC)")
    return tuple(out)


class TsMuxer:
    """Writes one MPEG-TS byte stream; ``program()`` opens a segment, ``video()`` / ``audio()`` add packets.

    Continuity counters run on across segments, so a reader that concatenates segments sees no discontinuity.
    """

    def __init__(self) -> None:
        self._cc: dict[int, int] = {}
        self._tracks: tuple[Track, ...] = ()

    def program(self, streams: tuple[Track, ...]) -> bytes:
        """PAT and PMT for ``streams``: what a segment starts with."""
        if not streams:
            raise ValueError("a program needs a stream")
        self._tracks = streams
        pat = _section(0x00, TRANSPORT_STREAM_ID, PROGRAM.to_bytes(2, "big") + (0xE000 | PMT_PID).to_bytes(2, "big"))
        entries = bytearray((0xE000 | streams[0].pid).to_bytes(2, "big") + b"\xf0\x00")  # PCR PID, no program info
        for track in streams:
            if track.kind == "h264":
                stream_type, descriptors = 0x1B, b""
            elif track.kind == "aac":
                stream_type, descriptors = 0x0F, b""
            else:
                stream_type = 0x06
                descriptors = b"\x05\x04Opus" + bytes((0x7F, 0x02, 0x80, track.channels))
            entries += bytes((stream_type,)) + (0xE000 | track.pid).to_bytes(2, "big")
            entries += (0xF000 | len(descriptors)).to_bytes(2, "big") + descriptors
        pmt = _section(0x02, PROGRAM, bytes(entries))
        return self._psi(PAT_PID, pat) + self._psi(PMT_PID, pmt)

    def video(self, data: bytes, pts: int, dts: int | None, keyframe: bool) -> bytes:
        """One H.264 access unit (Annex B), timestamps in 1/90000."""
        track = self._track("h264")
        if not _starts_with_aud(data):
            data = _H264_AUD + data
        dts = pts if dts is None else dts
        header = _pes_header(0xE0, pts, dts, 0)
        return self._pes(track.pid, header + data, pcr=dts, random_access=keyframe)

    def audio(self, data: bytes, pts: int) -> bytes:
        """One Opus or AAC packet (as the encoder made it), ``pts`` in 1/90000."""
        track = next((t for t in self._tracks if t.kind != "h264"), None)
        if track is None:
            raise ValueError("the current program has no audio stream")
        if track.kind == "aac":
            payload, stream_id = _adts_header(track.aac_config, len(data)) + data, 0xC0
        else:
            payload, stream_id = _opus_control_header(len(data)) + data, 0xBD
        header = _pes_header(stream_id, pts, pts, len(payload))
        pcr = pts if track is self._tracks[0] else None
        return self._pes(track.pid, header + payload, pcr=pcr, random_access=True)

    def _track(self, kind: TrackKind) -> Track:
        for track in self._tracks:
            if track.kind == kind:
                return track
        raise ValueError(f"the current program has no {kind} stream")

    def _counter(self, pid: int) -> int:
        cc = (self._cc.get(pid, 15) + 1) & 0x0F
        self._cc[pid] = cc
        return cc

    def _psi(self, pid: int, section: bytes) -> bytes:
        body = b"\x00" + section  # pointer_field
        header = bytes((SYNC, 0x40 | pid >> 8, pid & 0xFF, 0x10 | self._counter(pid)))
        return header + body + b"\xff" * (_PAYLOAD - len(body))

    def _pes(self, pid: int, pes: bytes, pcr: int | None, random_access: bool) -> bytes:
        out = bytearray()
        pos, end, first = 0, len(pes), True
        while pos < end:
            fields = b""
            if first and (random_access or pcr is not None):
                fields = bytes(((0x40 if random_access else 0) | (0x10 if pcr is not None else 0),))
                fields += _pcr(pcr) if pcr is not None else b""
            remaining = end - pos
            if fields:
                room = _PAYLOAD - 1 - len(fields)
                take = min(room, remaining)
                adaptation = bytes((len(fields) + room - take,)) + fields + b"\xff" * (room - take)
            elif remaining < _PAYLOAD:
                take, gap = remaining, _PAYLOAD - remaining
                # One byte of stuffing is the length byte alone; more is a flags byte (none set) and 0xFFs.
                adaptation = b"\x00" if gap == 1 else bytes((gap - 1, 0)) + b"\xff" * (gap - 2)
            else:
                take, adaptation = _PAYLOAD, b""
            control = 0x30 if adaptation else 0x10
            out += bytes((SYNC, (0x40 if first else 0) | pid >> 8, pid & 0xFF, control | self._counter(pid)))
            out += adaptation
            out += pes[pos : pos + take]
            pos += take
            first = False
        return bytes(out)


def _opus_control_header(size: int) -> bytes:
    """The Opus-in-TS control header: prefix 0x3FF, no trim flags, then au_size as 255s and a last byte below 255."""
    sizes = bytearray()
    while True:
        sizes.append(min(size, 255))
        size -= 255
        if size < 0:
            return b"\x7f\xe0" + bytes(sizes)


def _adts_header(config: bytes, size: int) -> bytes:
    """A 7-byte ADTS header (no CRC) for one raw AAC frame, from its AudioSpecificConfig."""
    object_type, rate_index, channels = config[0] >> 3, (config[0] & 0x07) << 1 | config[1] >> 7, config[1] >> 3 & 0x0F
    length = 7 + size
    if length >= 1 << 13:
        raise ValueError(f"a {size}-byte AAC frame does not fit ADTS")
    return bytes(
        (
            0xFF,
            0xF1,
            (object_type - 1) << 6 | rate_index << 2 | channels >> 2,
            (channels & 0x03) << 6 | length >> 11,
            length >> 3 & 0xFF,
            (length & 0x07) << 5 | 0x1F,
            0xFC,
        )
    )


def _section(table_id: int, table_id_extension: int, body: bytes) -> bytes:
    """A PSI section (version 0, current, one section) with its CRC."""
    length = 5 + len(body) + 4
    head = bytes((table_id, 0xB0 | length >> 8, length & 0xFF)) + table_id_extension.to_bytes(2, "big")
    section = head + b"\xc1\x00\x00" + body
    return section + crc32(section).to_bytes(4, "big")


def _timestamp(prefix: int, ts: int) -> bytes:
    ts &= _TS_MASK
    return bytes(
        (
            prefix << 4 | (ts >> 29) & 0x0E | 1,
            (ts >> 22) & 0xFF,
            (ts >> 14) & 0xFE | 1,
            (ts >> 7) & 0xFF,
            (ts << 1) & 0xFE | 1,
        )
    )


def _pes_header(stream_id: int, pts: int, dts: int, payload_size: int) -> bytes:
    """The PES header; ``payload_size`` 0 for an unbounded (video) PES. DTS only where it differs from PTS."""
    if dts == pts:
        flags, stamps = 0x80, _timestamp(0b0010, pts)
    else:
        flags, stamps = 0xC0, _timestamp(0b0011, pts) + _timestamp(0b0001, dts)
    length = 3 + len(stamps) + payload_size if payload_size else 0
    if length > 0xFFFF:
        raise ValueError(f"a {payload_size}-byte audio packet does not fit one PES")
    return (
        b"\x00\x00\x01" + bytes((stream_id,)) + length.to_bytes(2, "big") + bytes((0x80, flags, len(stamps))) + stamps
    )


def _pcr(ts: int) -> bytes:
    base = ts & _TS_MASK  # 27 MHz extension 0: PCR = DTS exactly
    return bytes((base >> 25 & 0xFF, base >> 17 & 0xFF, base >> 9 & 0xFF, base >> 1 & 0xFF, (base & 1) << 7 | 0x7E, 0))


def _starts_with_aud(data: bytes) -> bool:
    if data.startswith(b"\x00\x00\x00\x01"):
        return len(data) > 4 and data[4] & 0x1F == 9
    return data.startswith(b"\x00\x00\x01") and len(data) > 3 and data[3] & 0x1F == 9
