"""Hypothesis strategies for damaged trickle input: garbage bytes, real MPEG-TS segments (PyAV-encoded by the
runtime's test source) cut at any point, with bytes flipped, without their PAT/PMT tables or with every packet
header scrambled, empty segments; and the HTTP headers a segment is posted with, from missing to absurd."""

from __future__ import annotations

import functools

from byoc_runtime.media.testsource import SourceSpec, generate_segments
from hypothesis import strategies as st

TS_PACKET = 188
SEGMENT_SECONDS = 1.0


@functools.cache
def good_segments() -> tuple[bytes, ...]:
    """Four one-second segments of small video with Opus audio, timestamps 0..4 s."""
    return tuple(generate_segments(SourceSpec(width=128, height=96, seconds=4, audio_codec="libopus")))


def _flip(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for where, value in edits:
        out[where % len(out)] = value
    return bytes(out)


def _scramble_headers(data: bytes, seed: int) -> bytes:
    """Every TS packet keeps its sync byte but gets nonsense PID, flags and continuity counter."""
    out = bytearray(data)
    for start in range(0, len(out) - 3, TS_PACKET):
        out[start + 1 : start + 4] = ((start * 2654435761 + seed) & 0xFFFFFF).to_bytes(3, "big")
    return bytes(out)


@st.composite
def damaged(draw: st.DrawFn) -> tuple[str, bytes]:
    """(what was done, the bytes) for one damaged segment."""
    good = draw(st.sampled_from(good_segments()))
    kind = draw(st.sampled_from(["garbage", "truncated", "flipped", "empty", "no-tables", "scrambled", "sync-only"]))
    if kind == "garbage":
        return kind, draw(st.binary(min_size=1, max_size=50_000))
    if kind == "truncated":
        return kind, good[: draw(st.integers(0, len(good) - 1))]
    if kind == "flipped":
        edits = draw(st.lists(st.tuples(st.integers(0, len(good) - 1), st.integers(0, 255)), min_size=1, max_size=64))
        return kind, _flip(good, edits)
    if kind == "no-tables":
        return kind, good[2 * TS_PACKET :]  # the PAT and PMT lead each segment
    if kind == "scrambled":
        return kind, _scramble_headers(good, draw(st.integers(0, 2**24)))
    if kind == "sync-only":
        return kind, b"\x47" + b"\x00" * draw(st.integers(0, 4 * TS_PACKET))
    return kind, b""


HEADERS = st.sampled_from(
    [
        {"Content-Type": "video/mp2t"},
        {},  # none at all
        {"Content-Type": "video/mp2t; " + "x" * 6000},
        {"Content-Type": "application/json"},
        {"Content-Type": "video/mp2t", "Lp-Trickle-Seq": "-99999999999999999999999"},
        {"Content-Type": "video/mp2t", "X-Padding": "p" * 6000},
    ]
)
