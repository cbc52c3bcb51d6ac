"""``python -m benchmarks.runtime.inputs``: our runtime's added latency on the inputs a real gateway sends.

Each input is made the way FFmpeg-based ingest makes it (``byoc_testenv.devstream.gateway_media``: x264 with or
without B-frames, AAC or Opus, one continuous FFmpeg MPEG-TS muxer cut into 1 s segments) and published in real
time, one session at a time, through ``byoc-runtime --processor passthrough``, as the main benchmark's latency
mode does. Two of them are damaged on the way: one segment's middle overwritten with random bytes, one segment
ending halfway through (a publisher that broke off). Measured: added latency p50 / p95 over the frames after
the warm-up, and which frames never came out (in the damaged segment or elsewhere). Writes ``inputs.json``
beside the benchmark's results and, when ``results.json`` is there, rebuilds ``results.md`` with it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import heapq
import json
import os
import random
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from byoc_testenv.devstream.channels import InputLog, OutputLog
from byoc_testenv.devstream.gateway_media import GatewaySpec, gateway_stream
from byoc_testenv.devstream.latency import percentile
from byoc_testenv.devstream.mpegts import split_frames
from byoc_testenv.trickle import TrickleServer

from . import drive, report, run
from .report import GOAL_ADDED_MS
from .source import Clip
from .workers import Workers

DAMAGED_SEGMENT = 7  # after the warm-up, so its effect on the frames after it is measured
Damage = Literal["corrupt", "cut"]


@dataclass(frozen=True)
class GatewayInput:
    name: str
    spec: GatewaySpec
    damage: Damage | None = None
    # Pictures FFmpeg's H.264 decoder keeps back to reorder B-frames: the SPS's num_reorder_frames, 2 for x264's
    # b-pyramid (tests/runtime/test_demux.py pins this down).
    reorder_depth: int = 0


def inputs(seconds: int) -> list[GatewayInput]:
    base = GatewaySpec(854, 480, 30, seconds=seconds, audio="aac")
    return [
        GatewayInput("854x480 30 fps, AAC", base),
        GatewayInput("854x480 30 fps, B-frames (3), AAC", GatewaySpec(854, 480, 30, seconds, 3, "aac"), None, 2),
        GatewayInput("854x480 60 fps, Opus", GatewaySpec(854, 480, 60, seconds, 0, "libopus")),
        GatewayInput("1280x720 30 fps, B-frames (3), Opus", GatewaySpec(1280, 720, 30, seconds, 3, "libopus"), None, 2),
        GatewayInput(f"854x480 30 fps, AAC, segment {DAMAGED_SEGMENT} corrupt in its middle", base, "corrupt"),
        GatewayInput(f"854x480 30 fps, AAC, segment {DAMAGED_SEGMENT} cut off halfway", base, "cut"),
    ]


def damaged(segment: bytes, damage: Damage, rng: random.Random) -> bytes:
    """``corrupt``: a tenth of the segment from its middle on overwritten with random bytes (TS headers too);
    ``cut``: only its first half."""
    middle = len(segment) // 2
    if damage == "cut":
        return segment[:middle]
    span = len(segment) // 10
    return segment[:middle] + rng.randbytes(span) + segment[middle + span :]


def clip_of(item: GatewayInput) -> Clip:
    stream = gateway_stream(item.spec)
    segments = list(stream.segments)
    if item.damage is not None:
        segments[DAMAGED_SEGMENT] = damaged(segments[DAMAGED_SEGMENT], item.damage, random.Random(7))
    return Clip(item.spec.width, item.spec.height, segments, [split_frames(s) for s in segments])


def goal_ms(item: GatewayInput) -> tuple[float, float]:
    """The issue's 1-session added-latency goal for the input's size: the 512x512 one up to its pixel count, the
    1280x720 one above."""
    return GOAL_ADDED_MS["512x512" if item.spec.width * item.spec.height <= 512 * 512 else "1280x720"]


def reorder_release(sent: InputLog, depth: int) -> dict[int, float]:
    """When each frame can leave a decoder that keeps ``depth`` pictures back (FFmpeg's H.264 output rule: after
    each packet, the lowest timestamps out while more than ``depth`` wait): pts -> that moment, the sending of
    the packet that lets it out. Frames still held after the last packet are left out. ``sent`` lists the
    frames in the order they were sent, which is decode order."""
    waiting: list[int] = []
    released: dict[int, float] = {}
    for pts, at in sent.frame_sent.items():
        heapq.heappush(waiting, pts)
        while len(waiting) > depth:
            released[heapq.heappop(waiting)] = at
    return released


def latency_split(sent: InputLog, out: OutputLog, depth: int, skip: float) -> dict[str, float | None]:
    """p50 / p95 of the decoder's reorder hold (frame sent -> the decoder may release it) and of the latency the
    runtime adds beyond it (release -> output frame complete), over the frames after the first ``skip`` s."""
    released = reorder_release(sent, depth)
    first = min(sent.frame_sent) if sent.frame_sent else 0
    hold, beyond = [], []
    for pts, arrived in out.frame_published.items():
        if pts in released and pts in sent.frame_sent and (pts - first) / 90_000 >= skip:
            hold.append(1000 * (released[pts] - sent.frame_sent[pts]))
            beyond.append(1000 * (arrived - released[pts]))
    return {
        f"{name}_p{q}_ms": percentile(values, q) if values else None
        for name, values in (("hold", hold), ("beyond", beyond))
        for q in (50, 95)
    }


def lost_frames(sent: InputLog, out: OutputLog, depth: int) -> dict[str, int]:
    """Input frames with no output frame: in the damaged segment, the ones the decoder still held when the
    stream was stopped (only the end of the input channel flushes it), and elsewhere."""
    lost = set(sent.frame_sent) - set(out.frame_published)
    held = set(sent.frame_sent) - set(reorder_release(sent, depth))
    inside = sum(1 for pts in lost if sent.segment_of.get(pts) == DAMAGED_SEGMENT)
    at_stop = len(lost & held)
    return {"damaged_segment": inside, "at_stop": at_stop, "elsewhere": len(lost) - inside - at_stop}


async def measure(
    workers: Workers, server: TrickleServer, item: GatewayInput, seconds: int, skip: float
) -> dict[str, Any]:
    logs: list[tuple[InputLog, OutputLog]] = []
    m = await drive.latency(workers, server, clip_of(item), 1, seconds, skip, logs=logs)
    ((sent, out),) = logs
    p50_goal, p95_goal = goal_ms(item)
    lost = lost_frames(sent, out, item.reorder_depth)
    return {
        "input": item.name,
        "damage": item.damage,
        "frames_in": m.frames_in,
        "frames_out": m.frames_out,
        "lost": lost,
        "added_p50_ms": m.added_p50_ms,
        "added_p95_ms": m.added_p95_ms,
        "goal_p50_ms": p50_goal,
        "goal_p95_ms": p95_goal,
        **latency_split(sent, out, item.reorder_depth, skip),
        "cpu_ms_per_frame": m.cpu_ms_per_frame,
        "dropped": m.dropped,
        "stages_ms": m.stages_ms,
        "error": m.error,
        "load_avg": round(os.getloadavg()[0], 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.runtime.inputs", description=__doc__)
    parser.add_argument("--seconds", type=int, default=14, help="seconds of real-time input per input")
    parser.add_argument("--skip", type=float, default=4.0, help="leading seconds left out (warm-up)")
    parser.add_argument("--out", type=Path, default=run.HERE)
    args = parser.parse_args(argv)
    server = TrickleServer.start()
    workers = Workers.ours(1, run.CACHE / "logs", name="ours-inputs")
    rows = []
    try:
        workers.start()
        for item in inputs(args.seconds):
            row = asyncio.run(measure(workers, server, item, args.seconds, args.skip))
            workers.wait_idle()
            run.log(
                f"{item.name}: added p50 / p95 {row['added_p50_ms'] or 0:.1f} / {row['added_p95_ms'] or 0:.1f} ms, "
                f"{row['frames_out']}/{row['frames_in']} frames, lost {row['lost']}"
            )
            rows.append(row)
    finally:
        workers.stop()
        server.stop()
    command = "python -m benchmarks.runtime.inputs" + "".join(
        " " + shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / report.INPUTS_FILE
    path.write_text(
        json.dumps(
            {
                "command": command,
                "date": date,
                "seconds": args.seconds,
                "damaged_segment": DAMAGED_SEGMENT,
                "inputs": rows,
            },
            indent=2,
        )
        + "\n"
    )
    run.log(f"wrote {path}")
    if (args.out / "results.json").exists():
        run.main(["--report-only", "--out", str(args.out)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
