"""``python -m benchmarks.runtime.soak --minutes 10``: one long real-time stream through our runtime.

One 1280x720 30 fps stream with audio (the benchmark's clip, rendered at the full length so timestamps run on
and never loop), published in real time, each frame's bytes when due, through ``byoc-runtime --processor
passthrough``. Measured: frames lost (input frames with no output frame of the same PTS), the worker's own drop
counts, resident memory sampled every few seconds (drift after the warm-up), and whether output timestamps are
exact (every output frame carries an input frame's PTS, in order). Writes ``soak.json`` beside the benchmark's
results and, when ``results.json`` is there, rebuilds ``results.md`` with it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import itertools
import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
from byoc_runtime import trickle
from byoc_testenv.devstream.channels import InputLog, OutputLog, publish_paced, read_output, wait_caught_up
from byoc_testenv.gateway.session import KEEPALIVE
from byoc_testenv.gateway.timings import GatewayTimings
from byoc_testenv.trickle import TrickleServer

from . import drive, report, run
from .measurement import Measurement
from .source import FPS, load_clip
from .workers import Workers


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.runtime.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="measured length, after the warm-up")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds of stream before RSS is compared")
    parser.add_argument("--size", default="1280x720", choices=list(run.SIZES))
    parser.add_argument("--rss-every", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--out", type=Path, default=run.HERE)
    return parser.parse_args(argv)


async def _sample(workers: Workers, every: float, t0: float, into: list[tuple[float, int, float]]) -> None:
    """(seconds since t0, RSS bytes, 1-minute load) every ``every`` seconds until cancelled."""
    while True:
        into.append((time.monotonic() - t0, workers.rss_bytes(), os.getloadavg()[0]))
        await asyncio.sleep(every)


async def _keepalive(url: str, http: aiohttp.ClientSession) -> None:
    """The gateway's control keepalive: without it the trickle server closes the idle control channel after a few
    minutes, which the worker rightly takes for the orchestrator ending the stream."""
    control = trickle.Publisher(url, "application/json", http)
    try:
        while True:
            await asyncio.sleep(GatewayTimings().keepalive_interval)
            await control.write_segment(KEEPALIVE)
    finally:
        await control.close(delete=False)  # the stream's stop removes the channel


async def soak(
    workers: Workers, server: TrickleServer, clip: Any, every: float
) -> tuple[InputLog, OutputLog, list[tuple[float, int, float]], float]:
    stream = drive.Stream(server, workers.url(0))
    stream.create()
    sent, out = InputLog(), OutputLog()
    samples: list[tuple[float, int, float]] = []
    t0 = time.monotonic() + drive.SETTLE_S + 0.5
    async with aiohttp.ClientSession() as http:
        reader = asyncio.create_task(read_output(stream.url("-out"), out, session=http))
        sampler = asyncio.create_task(_sample(workers, every, t0, samples))
        keepalive = asyncio.create_task(_keepalive(stream.url("-control"), http))
        try:
            await stream.start(clip.width, clip.height)
            await publish_paced(stream.url(), clip.pieces, sent, t0=t0, close=False, session=http)
            await wait_caught_up(sent, out)
        finally:
            sampler.cancel()
            keepalive.cancel()
            await stream.stop()
            reader.cancel()
            await asyncio.gather(reader, sampler, keepalive, return_exceptions=True)
    stream.delete()
    return sent, out, samples, t0


def lost_frames(sent: InputLog, arrived: set[int], t0: float) -> list[dict[str, Any]]:
    """Each input frame with no output frame: when it was sent (seconds after t0), its segment and its place in
    that segment (0 = the segment's first frame), to tell stalls at segment boundaries from others."""
    by_segment: dict[int, list[int]] = {}
    for pts, segment in sent.segment_of.items():
        by_segment.setdefault(segment, []).append(pts)
    place = {pts: index for frames in by_segment.values() for index, pts in enumerate(sorted(frames))}
    return [
        {"at_s": round(sent.frame_sent[pts] - t0, 3), "segment": sent.segment_of.get(pts), "frame": place.get(pts)}
        for pts in sorted(set(sent.frame_sent) - arrived)
    ]


def gc_pauses(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    """The worker's garbage collector pauses by generation: how many, their total and how many took over 40 ms."""
    out = {}
    for key, count in metrics.items():
        if key.startswith("gc_count:"):
            generation = key.partition(":")[2]
            out[generation] = {
                "count": count,
                "total_s": round(metrics.get(f"gc_sum:{generation}", 0.0), 3),
                "over_40ms": count - metrics.get(f"gc_within_40ms:{generation}", count),
            }
    return out


def summarize(
    sent: InputLog,
    out: OutputLog,
    samples: list[tuple[float, int, float]],
    warmup: float,
    metrics: dict[str, float],
    t0: float,
) -> dict[str, Any]:
    inputs = set(sent.frame_sent)
    arrived = list(out.frame_published)  # in order of arrival
    dropped = {k.partition(":")[2]: int(v) for k, v in metrics.items() if k.startswith("dropped:")}
    m = Measurement("ours", "latency", "", 1, seconds=max(1.0, len(inputs) / FPS))
    drive.summarize_latency(m, [sent], [out], skip=warmup)
    warm = [(t, rss) for t, rss, _ in samples if t >= warmup]
    if not warm:
        raise RuntimeError(f"no RSS sample after the {warmup:g} s warm-up")
    warm_rss, end_rss = warm[0][1], warm[-1][1]
    worst = max((rss for _, rss in warm), key=lambda rss: abs(rss - warm_rss))
    return {
        "frames_in": len(inputs),
        "frames_out": len(arrived),
        "frames_lost": len(inputs - set(arrived)),
        "lost": lost_frames(sent, set(arrived), t0),
        "dropped": dropped,
        "gc_pauses": gc_pauses(metrics),
        "added_p50_ms": m.added_p50_ms,
        "added_p95_ms": m.added_p95_ms,
        "timestamps_mismatched": len(set(arrived) - inputs),
        "timestamps_out_of_order": sum(1 for a, b in itertools.pairwise(arrived) if b <= a),
        "rss_warm_mb": warm_rss / 2**20,
        "rss_end_mb": end_rss / 2**20,
        "rss_peak_mb": max(rss for _, rss in warm) / 2**20,
        "rss_drift": end_rss / warm_rss - 1,
        "rss_max_drift": worst / warm_rss - 1,
        "rss_samples": [(round(t, 1), rss) for t, rss, _ in samples],
        "load_min": min(load for _, _, load in samples),
        "load_max": max(load for _, _, load in samples),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    width, height = run.SIZES[args.size]
    seconds = round(args.warmup + args.minutes * 60)
    run.log(f"rendering / loading the {seconds} s input clip")
    clip = load_clip(width, height, seconds, run.CACHE)
    server = TrickleServer.start()
    workers = Workers.ours(1, run.CACHE / "logs", name="ours-soak")
    try:
        workers.start()
        run.log(f"soak: {args.size} {seconds} s in real time")
        sent, out, samples, t0 = asyncio.run(soak(workers, server, clip, args.rss_every))
        metrics = workers.metrics()
    finally:
        workers.stop()
        server.stop()
    result = summarize(sent, out, samples, args.warmup, metrics, t0)
    command = "python -m benchmarks.runtime.soak" + "".join(
        " " + shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    result.update(
        command=command,
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        size=args.size,
        fps=FPS,
        minutes=args.minutes,
        warmup_s=args.warmup,
        rss_every_s=args.rss_every,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / report.SOAK_FILE
    path.write_text(json.dumps(result, indent=2) + "\n")
    run.log(
        f"soak: {result['frames_lost']} of {result['frames_in']} frames lost, RSS drift {result['rss_drift']:+.2%} "
        f"(max {result['rss_max_drift']:+.2%}), {result['timestamps_mismatched']} timestamps off; wrote {path}"
    )
    if (args.out / "results.json").exists():
        run.main(["--report-only", "--out", str(args.out)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
