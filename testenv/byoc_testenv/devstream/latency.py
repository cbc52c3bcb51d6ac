"""Per-frame latency: input frames matched to output frames by PTS."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .channels import InputLog, OutputLog


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass(frozen=True, slots=True)
class FrameLatency:
    pts: int
    from_segment: float  # segment started arriving -> frame published (the end-to-end latency)
    from_frame: float  # frame complete on the input wire -> frame published (what the worker adds)


def match_frames(sent: InputLog, out: OutputLog) -> list[FrameLatency]:
    """Pair output frames with input frames by PTS (both runtimes keep input timestamps)."""
    matched = []
    for pts, published in sorted(out.frame_published.items()):
        if pts in sent.frame_sent:
            seg_start = sent.segment_start[sent.segment_of[pts]]
            matched.append(FrameLatency(pts, published - seg_start, published - sent.frame_sent[pts]))
    return matched
