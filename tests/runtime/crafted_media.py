"""Input a gateway could publish to hurt a worker, made cheaply: a stream whose H.264 sequence header announces a
huge picture (16000x16000) over the slice data of a 64x64 one, and a stream in a codec outside the allow-list."""

from __future__ import annotations

import io
from collections.abc import Iterator
from fractions import Fraction

import av
import numpy as np


class _BitReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def u(self, n: int) -> int:
        v = 0
        for _ in range(n):
            v = (v << 1) | ((self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return v

    def ue(self) -> int:
        z = 0
        while self.u(1) == 0:
            z += 1
        return (1 << z) - 1 + self.u(z)


class _BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, v: int) -> None:
        self.bits += [(v >> (n - 1 - i)) & 1 for i in range(n)]

    def ue(self, v: int) -> None:
        v += 1
        n = v.bit_length()
        self.u(n - 1, 0)
        self.u(n, v)


def _unescape(b: bytes) -> bytes:
    out = bytearray()
    z = 0
    for x in b:
        if z >= 2 and x == 3:
            z = 0
            continue
        out.append(x)
        z = z + 1 if x == 0 else 0
    return bytes(out)


def _escape(b: bytes) -> bytes:
    out = bytearray()
    z = 0
    for x in b:
        if z >= 2 and x <= 3:
            out.append(3)
            z = 0
        out.append(x)
        z = z + 1 if x == 0 else 0
    return bytes(out)


def _patch_sps(nal: bytes, mbs_w: int, mbs_h: int) -> bytes:
    """Baseline SPS (profile 66, poc type 0 or 2) with another picture size."""
    header, rbsp = nal[:1], _unescape(nal[1:])
    r = _BitReader(rbsp)
    w = _BitWriter()
    for _ in range(3):
        w.u(8, r.u(8))
    assert rbsp[0] == 66
    w.ue(r.ue())
    w.ue(r.ue())  # sps id, log2_max_frame_num
    poc = r.ue()
    w.ue(poc)
    if poc == 0:
        w.ue(r.ue())
    assert poc in (0, 2)
    w.ue(r.ue())
    w.u(1, r.u(1))  # refs, gaps
    r.ue()
    r.ue()
    w.ue(mbs_w - 1)
    w.ue(mbs_h - 1)
    fmo = r.u(1)
    w.u(1, fmo)
    assert fmo == 1
    w.u(1, r.u(1))  # direct8x8
    crop = r.u(1)
    w.u(1, 0)
    if crop:
        for _ in range(4):
            r.ue()
    total = len(rbsp) * 8
    while r.pos < total:
        w.u(1, r.u(1))  # vui + trailing bits, as they were
    bits = w.bits + [0] * (-len(w.bits) % 8)
    out = bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8)).rstrip(b"\0")
    return header + _escape(out)


def _nals(data: bytes) -> Iterator[bytes]:
    i = 0
    starts = []
    while True:
        j = data.find(b"\0\0\1", i)
        if j < 0:
            break
        starts.append(j + 3)
        i = j + 3
    for k, s in enumerate(starts):
        e = starts[k + 1] - 3 if k + 1 < len(starts) else len(data)
        nal = data[s:e]
        if k + 1 < len(starts) and nal.endswith(b"\0"):
            nal = nal[:-1]
        yield nal


def announced_size_segment(width: int = 16000, height: int = 16000) -> bytes:
    """Three 64x64 H.264 frames whose sequence header says ``width`` x ``height`` (multiples of 16)."""
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = 64, 64, "yuv420p"
    enc.time_base = Fraction(1, 30)
    enc.framerate = Fraction(30)
    enc.profile = "Baseline"
    enc.options = {"preset": "ultrafast", "tune": "zerolatency", "x264-params": "keyint=30"}
    packets = []
    for i in range(3):
        f = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24").reformat(format="yuv420p")
        f.pts = i
        packets += enc.encode(f)
    packets += enc.encode(None)
    buf = io.BytesIO()
    out = av.open(buf, "w", format="mpegts")
    s = out.add_stream("h264", rate=30)
    s.width, s.height = 64, 64
    for p in packets:
        data = bytes(p)
        parts = []
        for nal in _nals(data):
            if nal[0] & 0x1F == 7:
                nal = _patch_sps(nal, width // 16, height // 16)
            parts.append(b"\0\0\0\1" + nal)
        q = av.Packet(b"".join(parts))
        q.pts = p.pts
        q.dts = p.dts
        q.time_base = enc.time_base
        q.stream = s
        q.is_keyframe = p.is_keyframe
        out.mux(q)
    out.close()
    return buf.getvalue()


def mpeg2_segment(width: int = 160, height: int = 120, frames: int = 15) -> bytes:
    """An MPEG-TS segment of MPEG-2 video: valid, but not a codec the worker decodes."""
    buf = io.BytesIO()
    out = av.open(buf, "w", format="mpegts")
    stream = out.add_stream("mpeg2video", rate=30)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
        frame.pts = i
        out.mux(stream.encode(frame.reformat(format="yuv420p")))
    out.mux(stream.encode(None))
    out.close()
    return buf.getvalue()
