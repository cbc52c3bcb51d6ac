"""MPEG-TS timing of a trickle byte stream: where each video frame starts and ends, and its PTS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TS_PACKET = 188
PTS_HZ = 90_000


def _pes_pts(data: bytes | bytearray, off: int) -> int | None:
    """The PTS of a PES header at ``off`` (``00 00 01 sid ...``), if it has one."""
    if not data[off + 7] & 0x80:
        return None
    p = data[off + 9 : off + 14]
    return ((p[0] >> 1) & 0x07) << 30 | p[1] << 22 | (p[2] >> 1) << 15 | p[3] << 7 | p[4] >> 1


def _video_pes_start(data: bytes | bytearray, i: int) -> tuple[int, int | None] | None:
    """(pid, pts) when the TS packet at ``i`` starts a video PES (stream id 0xE0..0xEF), else None."""
    b1 = data[i + 1]
    if not b1 & 0x40:  # payload_unit_start_indicator
        return None
    afc = (data[i + 3] >> 4) & 3
    off = i + 4
    if afc & 2:
        off += 1 + data[off]
    if not afc & 1 or off + 14 > i + TS_PACKET or data[off : off + 3] != b"\x00\x00\x01":
        return None
    if not 0xE0 <= data[off + 3] <= 0xEF:
        return None
    return ((b1 & 0x1F) << 8) | data[i + 2], _pes_pts(data, off)


class VideoTimeline:
    """Reads an MPEG-TS byte stream as it arrives and says when each video frame was complete.

    ``feed(chunk, t)`` with the time the chunk arrived returns the frames it completed as ``(pts, t)`` pairs,
    ``t`` being the arrival time of the frame's last TS packet. A frame (PES) is known to be complete when the
    next one on its PID starts or at ``end()`` (end of a trickle segment). Parsing TS headers instead of
    demuxing lets frames be timed while a segment is still streaming in, with no decoder in the loop.
    """

    def __init__(self) -> None:
        self._rest = b""
        self._open: dict[int, list[Any]] = {}  # pid -> [pts, arrival of its last packet so far]

    def feed(self, chunk: bytes, t: float) -> list[tuple[int, float]]:
        data = self._rest + chunk if self._rest else chunk
        done: list[tuple[int, float]] = []
        i, n = 0, len(data)
        while i + TS_PACKET <= n:
            if data[i] != 0x47:
                i = data.find(b"\x47", i + 1)  # lost sync (not seen in practice): skip to the next sync byte
                if i < 0:
                    i = n
                continue
            start = _video_pes_start(data, i)
            pid = ((data[i + 1] & 0x1F) << 8) | data[i + 2]
            if start is not None:
                previous = self._open.pop(pid, None)
                if previous is not None and previous[0] is not None:
                    done.append((previous[0], previous[1]))
                self._open[pid] = [start[1], t]
            elif pid in self._open:
                self._open[pid][1] = t
            i += TS_PACKET
        self._rest = bytes(data[i:])
        return done

    def end(self) -> list[tuple[int, float]]:
        """The segment ended: its open frames are complete."""
        done = [(pts, t) for pts, t in self._open.values() if pts is not None]
        self._open.clear()
        self._rest = b""
        return done


@dataclass(frozen=True, slots=True)
class FramePiece:
    """The bytes of one input segment from the start of a video frame's PES to the next one's."""

    pts: int
    data: bytes


def split_frames(segment: bytes) -> list[FramePiece]:
    """Cut a segment at each video frame start; the first piece also carries PAT/PMT and anything before.

    Sending piece k when frame k is due makes frame k complete on the wire at that moment, as a live encoder
    would deliver it.
    """
    starts: list[tuple[int, int]] = []
    for i in range(0, len(segment) - TS_PACKET + 1, TS_PACKET):
        if segment[i] == 0x47 and (found := _video_pes_start(segment, i)) is not None and found[1] is not None:
            starts.append((i, found[1]))
    if not starts:
        return []
    bounds = [0] + [offset for offset, _ in starts[1:]] + [len(segment)]
    return [FramePiece(pts, segment[bounds[k] : bounds[k + 1]]) for k, (_, pts) in enumerate(starts)]


def frame_pts(segment: bytes) -> list[int]:
    return [piece.pts for piece in split_frames(segment)]
