"""MPEG-TS demuxing for live input: the program tables (PAT, PMT), PES reassembly per PID, PTS/DTS.

Why not FFmpeg's demuxer: a video PES carries no length, so FFmpeg ends one only when the next PES on its PID
starts, and every frame waits a frame interval in the demuxer. Here a PES also ends when its bytes are all in:
a muxer must pad the last TS packet of a PES with adaptation-field stuffing (a TS packet cannot carry the start
of the next PES), so a PES whose latest packet was padded, at the end of what has arrived so far (the trickle
chunk that carried it ended), is complete; the decoder gets it then (``TsDemuxer.chunk_end``). Only a PES whose
payload happens to fill its last packet exactly (1 in 184) waits for the next one, as it would in FFmpeg.

Pure parsing (bytes in, typed values out); decoding is ``media.decode``'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal, NamedTuple

PACKET_SIZE = 188
SYNC = 0x47
PAT_PID = 0x0000
NULL_PID = 0x1FFF
PTS_HZ = 90_000
TIME_BASE = Fraction(1, PTS_HZ)  # what timestamps count in, in and out: MPEG-TS's 90 kHz


def rescale(ts: int, src: Fraction, dst: Fraction) -> int:
    """A timestamp counted in ``src`` as counted in ``dst``, rounded."""
    if src == dst:
        return ts
    return round(Fraction(ts) * src / dst)


DEFAULT_MAX_PES_BYTES = 16 * 1024 * 1024  # one access unit; more is damage (the segment itself is capped too)

StreamKind = Literal["video", "audio", "other"]

# stream_type (ISO 13818-1 table 2-34 and its registrations) -> (kind, FFmpeg decoder name).
_STREAM_TYPES: dict[int, tuple[StreamKind, str]] = {
    0x01: ("video", "mpeg1video"),
    0x02: ("video", "mpeg2video"),
    0x03: ("audio", "mp3"),  # MPEG-1 audio; FFmpeg's mpegaudio decoders take any layer
    0x04: ("audio", "mp3"),  # MPEG-2 audio
    0x0F: ("audio", "aac"),  # ADTS
    0x10: ("video", "mpeg4"),
    0x11: ("audio", "aac_latm"),
    0x1B: ("video", "h264"),
    0x24: ("video", "hevc"),
    0x33: ("video", "vvc"),
    0x42: ("video", "cavs"),
    0x81: ("audio", "ac3"),
    0x87: ("audio", "eac3"),
    0xD1: ("video", "dirac"),
    0xEA: ("video", "vc1"),
}
# stream_type 0x06 (private PES data) is told apart by a registration descriptor (format identifier)...
_REGISTRATIONS: dict[bytes, tuple[StreamKind, str]] = {
    b"Opus": ("audio", "opus"),
    b"AC-3": ("audio", "ac3"),
    b"EAC3": ("audio", "eac3"),
    b"HEVC": ("video", "hevc"),
}
# ... or by a DVB descriptor tag.
_DESCRIPTOR_TAGS: dict[int, tuple[StreamKind, str]] = {0x6A: ("audio", "ac3"), 0x7A: ("audio", "eac3")}
_OPUS_EXTENSION = (0x7F, 0x80)  # DVB extension descriptor, extension tag for Opus: channel_config_code follows


@dataclass(frozen=True, slots=True)
class ElementaryStream:
    pid: int
    stream_type: int
    kind: StreamKind
    codec: str  # FFmpeg's decoder name ("h264", "opus"); "stream_type 0xNN" when the type is unknown
    opus_channel_config: int | None = None  # Opus only: the PMT's channel_config_code (RFC 7845 counts)


@dataclass(frozen=True, slots=True)
class ProgramTable:
    """The first program's elementary streams, as its PMT lists them."""

    program: int
    version: int
    streams: tuple[ElementaryStream, ...]

    @property
    def video(self) -> ElementaryStream | None:
        return next((s for s in self.streams if s.kind == "video"), None)

    @property
    def audio(self) -> ElementaryStream | None:
        return next((s for s in self.streams if s.kind == "audio"), None)


@dataclass(frozen=True, slots=True)
class Pes:
    """One PES packet's payload (for video, one access unit), timestamps in 90 kHz units (33 bits, as sent)."""

    pid: int
    pts: int | None
    dts: int | None
    data: bytes
    random_access: bool = False  # the adaptation field of its first TS packet said so (a keyframe)


TsEvent = ProgramTable | Pes


@dataclass(slots=True)
class _Assembly:
    """A PES being reassembled on one PID."""

    parts: list[bytes] = field(default_factory=list)
    size: int = 0
    total: int = 0  # from PES_packet_length; 0: unbounded (video), ends with the next PES or an end mark
    end_marked: bool = False  # the latest TS packet was padded: the PES ends there
    damaged: bool = False  # a TS packet of it was lost or flagged in error
    random_access: bool = False


@dataclass(slots=True)
class _Section:
    """A PSI section (PAT or PMT) being collected across TS packets."""

    data: bytearray = field(default_factory=bytearray)
    active: bool = False


class TsDemuxer:
    """Splits one MPEG-TS byte stream, fed in arbitrary pieces, into program tables and PES packets.

    Only the first program's first video and first audio stream are reassembled. A PES is handed out when the
    next one on its PID starts, when its announced length is reached, at ``chunk_end()`` when its end was marked
    (see the module docstring), or at ``end()``. Damage (lost sync, lost or broken TS packets, oversized PES)
    drops what it touched and is listed in ``errors``; it never raises.
    """

    def __init__(self, max_pes_bytes: int = DEFAULT_MAX_PES_BYTES) -> None:
        self._max_pes = max_pes_bytes
        self._rest = b""  # an incomplete TS packet left from the last piece fed
        self._pmt_pid: int | None = None
        self._program = 0
        self._sections: dict[int, _Section] = {}
        self._last_section: dict[int, bytes] = {}  # pid -> the last section parsed (repeats are skipped)
        self._pes: dict[int, _Assembly | None] = {}  # selected PIDs -> the PES in progress (None: none yet)
        self._cc: dict[int, int] = {}
        self._early: set[int] = set()  # PIDs whose latest PES was handed out at its end mark
        self._pads_inside: set[int] = set()  # PIDs whose muxer padded a packet inside a PES: no early hand-out
        self.program: ProgramTable | None = None
        self.errors: list[str] = []

    # -- feeding --------------------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> list[TsEvent]:
        """Parse the whole TS packets in what has arrived; returns the tables and PES packets they completed."""
        data = self._rest + chunk if self._rest else chunk
        out: list[TsEvent] = []
        i, n = 0, len(data)
        while i + PACKET_SIZE <= n:
            if data[i] != SYNC:
                found, proven = _resync(data, i)
                self._error(f"lost MPEG-TS sync; skipped {found - i} bytes")
                self._damage_all()
                i = found
                if not proven:
                    break  # keep the tail from a candidate sync byte: the next piece may prove it
                continue
            self._packet(data, i, out)
            i += PACKET_SIZE
        self._rest = data[i:]
        return out

    def chunk_end(self) -> list[Pes]:
        """Everything that has arrived was fed: hand out each PES whose end was marked."""
        if self._rest:
            return []  # a TS packet is half in: more of this write is on its way
        out: list[Pes] = []
        for pid, asm in self._pes.items():
            if asm is not None and asm.end_marked and pid not in self._pads_inside:
                self._pes[pid] = None
                self._early.add(pid)
                if (pes := self._finish(pid, asm)) is not None:
                    out.append(pes)
        return out

    def end(self, cut: bool = False) -> list[Pes]:
        """The stream ended: the PES still open are complete, unless ``cut`` (the input broke off) and their end
        was not marked. A TS packet left half in is dropped, and the PES it belonged to with it."""
        if self._rest:
            if len(self._rest) >= 3 and self._rest[0] == SYNC:
                asm = self._pes.get(((self._rest[1] & 0x1F) << 8) | self._rest[2])
                if asm is not None:
                    asm.damaged = True
            self._rest = b""
        out: list[Pes] = []
        for pid, asm in self._pes.items():
            self._pes[pid] = None
            if asm is None:
                continue
            if (asm.total and asm.size < asm.total) or (cut and not asm.end_marked):
                self._error(f"the input ended inside a PES on PID {pid}; the PES is dropped")
            elif (pes := self._finish(pid, asm)) is not None:
                out.append(pes)
        return out

    # -- TS packets -----------------------------------------------------------------------------------

    def _packet(self, data: bytes, i: int, out: list[TsEvent]) -> None:
        b1, b3 = data[i + 1], data[i + 3]
        pid = ((b1 & 0x1F) << 8) | data[i + 2]
        selected = pid in self._pes
        if not selected and pid != PAT_PID and pid != self._pmt_pid:
            return
        if b1 & 0x80:  # transport_error_indicator: the modem/link says this packet is broken
            if selected and (asm := self._pes[pid]) is not None:
                asm.damaged = True
            return
        afc = (b3 >> 4) & 3
        start = i + 4
        af = _NO_ADAPTATION
        if afc & 2:
            af_len = data[start]
            if af_len > PACKET_SIZE - 5 or (afc == 3 and af_len == PACKET_SIZE - 5):
                self._error("a TS packet's adaptation field overruns it")
                if selected and (asm := self._pes[pid]) is not None:
                    asm.damaged = True
                return
            af = _adaptation(data, start, af_len)
            start += 1 + af_len
        if not afc & 1:
            return  # no payload (and the continuity counter does not move)
        cc = b3 & 0x0F
        previous = self._cc.get(pid)
        self._cc[pid] = cc
        continuous = previous is None or cc == (previous + 1) & 0x0F or af.discontinuity
        pusi = bool(b1 & 0x40)
        if not selected:
            self._psi(pid, data, start, i + PACKET_SIZE, pusi, continuous, out)
            return
        asm = self._pes[pid]
        if cc == previous and asm is not None and asm.parts and asm.parts[-1] == data[start : i + PACKET_SIZE]:
            return  # a duplicate packet (the standard allows one); the same counter on new data is a discontinuity
        if pusi:
            self._early.discard(pid)
            if asm is not None:
                if not continuous and not asm.end_marked:
                    asm.damaged = True  # packets were lost after its last one we saw, and it had not ended
                if (pes := self._finish(pid, asm)) is not None:
                    out.append(pes)
            asm = _Assembly(random_access=af.random_access)
            self._pes[pid] = asm
        elif asm is None:
            if pid in self._early:
                # The PES handed out at its end mark went on: this muxer pads inside a PES. It was decoded cut
                # short; from now on PES on this PID wait for the next one to start.
                self._error(f"a PES on PID {pid} went on after a padded packet; waiting for PES starts from now on")
                self._pads_inside.add(pid)
                self._early.discard(pid)
            return  # the rest of a PES whose start we did not see (or that was dropped)
        elif not continuous:
            asm.damaged = True
        payload = data[start : i + PACKET_SIZE]
        asm.parts.append(payload)
        asm.size += len(payload)
        if not asm.total and asm.size >= 6 and len(asm.parts) <= 2:
            head = b"".join(asm.parts[:2])
            if head[:3] == b"\x00\x00\x01" and (length := (head[4] << 8) | head[5]):
                asm.total = 6 + length
        asm.end_marked = af.padded
        if asm.total and asm.size >= asm.total:
            self._pes[pid] = None
            if (pes := self._finish(pid, asm)) is not None:
                out.append(pes)
        elif asm.size > self._max_pes:
            self._error(f"a PES on PID {pid} grew over {self._max_pes} bytes; dropped")
            self._pes[pid] = None

    def _finish(self, pid: int, asm: _Assembly) -> Pes | None:
        """The PES ``asm`` holds, or None (and an error) when it is damaged."""
        if asm.damaged:
            self._error(f"TS packets of a PES on PID {pid} were lost or broken; the PES is dropped")
            return None
        pes = _parse_pes(pid, b"".join(asm.parts), asm.total, asm.random_access)
        if pes is None:
            self._error(f"a malformed PES header on PID {pid}; the PES is dropped")
        return pes

    def _damage_all(self) -> None:
        for asm in self._pes.values():
            if asm is not None:
                asm.damaged = True
        self._cc.clear()

    def _error(self, message: str) -> None:
        if len(self.errors) < 10:
            self.errors.append(f"demux: {message}")

    # -- program tables -------------------------------------------------------------------------------

    def _psi(
        self, pid: int, data: bytes, start: int, stop: int, pusi: bool, continuous: bool, out: list[TsEvent]
    ) -> None:
        section = self._sections.setdefault(pid, _Section())
        if pusi:
            pointer = data[start]
            if section.active and continuous:
                section.data += data[start + 1 : start + 1 + pointer]  # the end of the previous section
                self._section_done(pid, section, out)
            section.data = bytearray(data[start + 1 + pointer : stop])
            section.active = True
        elif section.active and continuous:
            section.data += data[start:stop]
        else:
            section.active = False
            return
        self._section_done(pid, section, out)

    def _section_done(self, pid: int, section: _Section, out: list[TsEvent]) -> None:
        buf = section.data
        if len(buf) < 3:
            return
        if buf[0] == 0xFF:  # stuffing after the last section
            section.active = False
            return
        length = 3 + (((buf[1] & 0x0F) << 8) | buf[2])
        if len(buf) < length:
            return
        raw = bytes(buf[:length])
        section.active = False
        if self._last_section.get(pid) == raw:
            return  # the usual repeat of an unchanged table
        if length < 12 or crc32(raw) != 0:
            self._error(f"a program table on PID {pid} failed its CRC; ignored")
            return
        self._last_section[pid] = raw
        if pid == PAT_PID and raw[0] == 0x00:
            self._pat(raw)
        elif pid == self._pmt_pid and raw[0] == 0x02:
            if (table := self._pmt(raw)) is not None:
                out.append(table)

    def _pat(self, raw: bytes) -> None:
        for k in range(8, len(raw) - 4 - 3, 4):
            program = (raw[k] << 8) | raw[k + 1]
            if program == 0:
                continue  # the network information table
            pmt_pid = ((raw[k + 2] & 0x1F) << 8) | raw[k + 3]
            if pmt_pid != self._pmt_pid:
                self._pmt_pid, self._program = pmt_pid, program
                self._last_section.pop(pmt_pid, None)
            return

    def _pmt(self, raw: bytes) -> ProgramTable | None:
        program = (raw[3] << 8) | raw[4]
        if program != self._program:
            return None
        info_len = ((raw[10] & 0x0F) << 8) | raw[11]
        k, stop = 12 + info_len, len(raw) - 4
        streams: list[ElementaryStream] = []
        while k + 5 <= stop:
            stream_type = raw[k]
            pid = ((raw[k + 1] & 0x1F) << 8) | raw[k + 2]
            es_len = ((raw[k + 3] & 0x0F) << 8) | raw[k + 4]
            streams.append(_stream(stream_type, pid, raw[k + 5 : min(k + 5 + es_len, stop)]))
            k += 5 + es_len
        table = ProgramTable(program, (raw[5] >> 1) & 0x1F, tuple(streams))
        self.program = table
        wanted = {s.pid for s in (table.video, table.audio) if s is not None}
        self._pes = {pid: self._pes.get(pid) for pid in wanted}
        return table


def _resync(data: bytes, i: int) -> tuple[int, bool]:
    """After lost sync at ``i``: (offset, True) of the next sync byte with another one a packet after it, or
    (offset, False) of the first one too close to the end to tell (``len(data)`` if there is none)."""
    j = data.find(SYNC, i + 1)
    while j >= 0:
        if j + PACKET_SIZE >= len(data):
            return j, False
        if data[j + PACKET_SIZE] == SYNC:
            return j, True
        j = data.find(SYNC, j + 1)
    return len(data), False


class _AdaptationField(NamedTuple):
    padded: bool  # longer than the fields its flags announce (stuffing), or announcing none: a PES ends here
    random_access: bool
    discontinuity: bool  # the continuity counter may jump here


_NO_ADAPTATION = _AdaptationField(False, False, False)


def _adaptation(data: bytes, start: int, af_len: int) -> _AdaptationField:
    """The adaptation field at ``start``. A muxer pads a packet (stuffing, or a field with nothing in it) only
    where the PES in it ends before the packet does."""
    if af_len == 0:
        return _AdaptationField(True, False, False)  # the length byte alone: one byte of stuffing
    flags = data[start + 1]
    need = 1
    if flags & 0x10:
        need += 6  # PCR
    if flags & 0x08:
        need += 6  # OPCR
    if flags & 0x04:
        need += 1  # splice countdown
    if flags & 0x02 and need < af_len:
        need += 1 + data[start + 1 + need]  # private data
    if flags & 0x01 and need < af_len:
        need += 1 + data[start + 1 + need]  # extension
    return _AdaptationField(af_len > need or flags == 0, bool(flags & 0x40), bool(flags & 0x80))


def _timestamp(b: bytes, k: int) -> int:
    return ((b[k] >> 1) & 0x07) << 30 | b[k + 1] << 22 | (b[k + 2] >> 1) << 15 | b[k + 3] << 7 | b[k + 4] >> 1


def _parse_pes(pid: int, raw: bytes, total: int, random_access: bool) -> Pes | None:
    if len(raw) < 6 or raw[:3] != b"\x00\x00\x01":
        return None
    if total:
        raw = raw[:total]
    if len(raw) < 9 or raw[6] & 0xC0 != 0x80:
        return None
    flags, header_end = raw[7], 9 + raw[8]
    if header_end > len(raw):
        return None
    pts = dts = None
    if flags & 0x80 and header_end >= 14:
        pts = _timestamp(raw, 9)
        if flags & 0x40 and header_end >= 19:
            dts = _timestamp(raw, 14)
    return Pes(pid, pts, dts, raw[header_end:], random_access)


def _stream(stream_type: int, pid: int, descriptors: bytes) -> ElementaryStream:
    kind_codec = _STREAM_TYPES.get(stream_type)
    opus_config: int | None = None
    for tag, body in _descriptors(descriptors):
        if stream_type == 0x06 and kind_codec is None:
            if tag == 0x05 and body[:4] in _REGISTRATIONS:
                kind_codec = _REGISTRATIONS[body[:4]]
            elif tag in _DESCRIPTOR_TAGS:
                kind_codec = _DESCRIPTOR_TAGS[tag]
        if (tag, body[:1]) == (_OPUS_EXTENSION[0], bytes([_OPUS_EXTENSION[1]])) and len(body) >= 2:
            opus_config = body[1]
    kind, codec = kind_codec or ("other", f"stream_type 0x{stream_type:02x}")
    return ElementaryStream(pid, stream_type, kind, codec, opus_config if codec == "opus" else None)


def _descriptors(data: bytes) -> Iterator[tuple[int, bytes]]:
    k = 0
    while k + 2 <= len(data):
        tag, length = data[k], data[k + 1]
        yield tag, data[k + 2 : k + 2 + length]
        k += 2 + length


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc32(data: bytes) -> int:
    """MPEG-2's CRC-32 (not zlib's: not bit-reflected); 0 over a section that ends with its own CRC."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[(crc >> 24) ^ byte]
    return crc
