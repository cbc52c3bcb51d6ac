"""``byoc-dev-stream``: the BYOC guide's by-hand worker test (trickle server, ffmpeg publisher, curl start,
ffplay on the output) as one command.

    byoc-dev-stream --processor grayscale --generate --seconds 5
    byoc-dev-stream --processor my_pkg.effects:Glow --input clip.mp4 --size 704x384
    byoc-dev-stream --worker-url http://127.0.0.1:8000 --generate     # any worker already running (PyTrickle too)

It starts a local trickle server (ours, orchestrator-like: channels are created before the worker is started),
starts ``byoc-runtime`` with the processor unless ``--worker-url`` names a running worker, POSTs
``/stream/start`` with the five channel URLs, publishes the input in real time (each frame's bytes when the
frame is due, as a live gateway does), reads the output and events channels back, stops the stream and prints
a report. A PNG of an input frame beside the output frame with the same timestamp is saved to ``--out``.

The pieces live beside this module because the runtime benchmark (``benchmarks/runtime``) and the e2e tests drive
workers the same way: ``mpegts.VideoTimeline`` (when each video frame of an MPEG-TS byte stream was complete),
``mpegts.split_frames`` and ``channels.publish_paced`` (real-time input), ``worker.WorkerProcess`` (a worker
subprocess on a free port).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .channels import (
    CHANNEL_SUFFIXES,
    InputLog,
    OutputLog,
    event_type,
    publish_paced,
    read_events,
    read_output,
    wait_caught_up,
    wait_output,
)
from .latency import match_frames, percentile
from .mpegts import PTS_HZ, FramePiece, split_frames
from .pictures import decode_frame, side_by_side
from .sources import file_segments, generated_segments
from .worker import WorkerProcess, http_json, worker_health


@dataclass
class Report:
    worker: str
    size: str
    source: str
    frames_in: int = 0
    frames_out: int = 0
    fps: float = 0.0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    from_segment_p50_ms: float | None = None
    from_segment_p95_ms: float | None = None
    first_output_s: float | None = None
    events: dict[str, int] = field(default_factory=dict)
    start_status: int | None = None
    stop_status: int | None = None
    png: str | None = None
    png_pts: float | None = None
    note: str | None = None
    error: str | None = None

    def text(self) -> str:
        ms = (
            "n/a"
            if self.latency_p50_ms is None
            else f"p50 {self.latency_p50_ms:.0f} ms, p95 {self.latency_p95_ms:.0f} ms"
        )
        seg = (
            "n/a"
            if self.from_segment_p50_ms is None
            else f"p50 {self.from_segment_p50_ms:.0f} ms, p95 {self.from_segment_p95_ms:.0f} ms"
        )
        share = f" ({100 * self.frames_out / self.frames_in:.0f}%)" if self.frames_in else ""
        events = ", ".join(f"{name} x{count}" for name, count in sorted(self.events.items())) or "none"
        first = "n/a" if self.first_output_s is None else f"{self.first_output_s:.2f} s after the first input byte"
        lines = [
            f"byoc-dev-stream: {self.worker}, {self.size}, {self.source}",
            f"  frames in     {self.frames_in}",
            f"  frames out    {self.frames_out}{share}",
            f"  output fps    {self.fps:.1f}",
            f"  latency       {ms}  (frame complete on the input channel -> frame published on the output)",
            f"  from segment  {seg}  (input segment started -> frame published)",
            f"  first output  {first}",
            f"  events        {events}",
            f"  start/stop    HTTP {self.start_status} / HTTP {self.stop_status}",
        ]
        if self.png:
            lines.append(f"  side by side  {self.png} (input left, output right, t={self.png_pts:.3f} s)")
        if self.note:
            lines.append(f"  note          {self.note}")
        if self.error:
            lines.append(f"  ERROR         {self.error}")
        return "\n".join(lines)


@dataclass
class Options:
    processor: str | None
    worker_url: str | None
    input: Path | None
    seconds: float
    width: int
    height: int
    out: Path
    params: dict[str, Any]
    first_output_timeout: float


async def stream_once(opts: Options, worker_url: str, server: Any, segments: list[bytes], report: Report) -> None:
    """One stream against a running worker: channels, start, real-time input, output and events, stop."""
    import aiohttp

    sid = f"devstream-{uuid.uuid4().hex[:8]}"
    for suffix, mime in CHANNEL_SUFFIXES.items():
        server.create_channel(sid + suffix, mime)
    url = server.url
    pieces = [split_frames(s) for s in segments]
    report.frames_in = sum(len(p) for p in pieces)
    sent, out = InputLog(), OutputLog()
    events: list[Any] = []
    # One session for every trickle client, closed here: a client cancelled mid-request may not close its own.
    async with aiohttp.ClientSession() as http:
        readers = [
            asyncio.create_task(read_output(url(sid + "-out"), out, keep=True, session=http)),
            asyncio.create_task(read_events(url(sid + "-events"), events, session=http)),
        ]
        try:
            await drive(opts, worker_url, sid, url, pieces, sent, out, report, http)
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            for suffix in CHANNEL_SUFFIXES:
                with contextlib.suppress(OSError):
                    server.delete_channel(sid + suffix)
    summarize(report, sent, out, events, segments, opts.out)


async def drive(
    opts: Options,
    worker_url: str,
    sid: str,
    url: Callable[[str], str],
    pieces: list[list[FramePiece]],
    sent: InputLog,
    out: OutputLog,
    report: Report,
    http: Any,
) -> None:
    """Start the stream, publish the input in real time, wait for the output to catch up, stop the stream."""
    body = {
        "gateway_request_id": sid,
        "subscribe_url": url(sid),
        "publish_url": url(sid + "-out"),
        "control_url": url(sid + "-control"),
        "events_url": url(sid + "-events"),
        "data_url": url(sid + "-data"),
        "params": {"width": opts.width, "height": opts.height, **opts.params},
    }
    headers = {"X-Stream-Id": sid}
    report.start_status, reply = await asyncio.to_thread(http_json, "POST", worker_url + "/stream/start", body, headers)
    if report.start_status != 200:
        raise RuntimeError(f"/stream/start answered {report.start_status}: {reply}")
    await asyncio.sleep(0.5)  # let the worker's subscriber reach the server (PyTrickle starts at the live edge)
    publishing = asyncio.create_task(publish_paced(url(sid), pieces, sent, close=False, session=http))
    if not await wait_output(out, lambda: bool(out.frame_published), opts.first_output_timeout):
        publishing.cancel()  # nothing came out: no point publishing the rest
    with contextlib.suppress(asyncio.CancelledError):
        await publishing
    if out.frame_published:
        await wait_caught_up(sent, out)
    report.stop_status, _ = await asyncio.to_thread(http_json, "POST", worker_url + "/stream/stop", {}, headers)
    await asyncio.sleep(0.5)  # the final events (stream_stopped) are in flight


def summarize(
    report: Report, sent: InputLog, out: OutputLog, events: list[Any], segments: list[bytes], out_dir: Path
) -> None:
    report.events = dict(Counter(event_type(e) for e in events))
    report.frames_out = len(out.frame_published)
    times = sorted(out.frame_published.values())
    if len(times) > 1 and times[-1] > times[0]:
        report.fps = (len(times) - 1) / (times[-1] - times[0])
    if times and sent.segment_start:
        report.first_output_s = times[0] - sent.segment_start[0]
    matched = match_frames(sent, out)
    if matched:
        added = [m.from_frame * 1000 for m in matched]
        whole = [m.from_segment * 1000 for m in matched]
        report.latency_p50_ms, report.latency_p95_ms = percentile(added, 50), percentile(added, 95)
        report.from_segment_p50_ms, report.from_segment_p95_ms = percentile(whole, 50), percentile(whole, 95)
        first_pts = min(sent.frame_sent)
        middle = picture_pts([m.pts for m in matched], first_pts)
        input_frame, output_frame = decode_frame(segments, middle), decode_frame(out.segments, middle)
        if input_frame is not None and output_frame is not None:
            png = out_dir / "side-by-side.png"
            side_by_side(input_frame, output_frame, png)
            report.png, report.png_pts = str(png), (middle - first_pts) / PTS_HZ


def picture_pts(candidates: Sequence[int], first_pts: int) -> int:
    """A frame from the middle third, half-way between whole seconds (the test pattern flashes white on them)."""
    third = len(candidates) // 3
    middle = candidates[third : len(candidates) - third] or list(candidates)
    return min(middle, key=lambda pts: abs(((pts - first_pts) / PTS_HZ) % 1.0 - 0.5))


async def run(opts: Options) -> Report:
    from byoc_testenv.trickle import TrickleServer

    if opts.input is not None:
        source = f"{opts.input.name} ({opts.seconds:g} s)"
        segments = await asyncio.to_thread(file_segments, opts.input, opts.seconds)
    else:
        source = f"generated test pattern ({opts.seconds:g} s)"
        segments = await asyncio.to_thread(generated_segments, opts.width, opts.height, opts.seconds)
    report = Report(
        worker=opts.worker_url or f"byoc-runtime --processor {opts.processor}",
        size=f"{opts.width}x{opts.height}",
        source=source,
    )
    opts.out.mkdir(parents=True, exist_ok=True)
    worker: WorkerProcess | None = None
    server = await asyncio.to_thread(TrickleServer.start)
    try:
        if opts.worker_url:
            worker_url = opts.worker_url.rstrip("/")
            if worker_health(worker_url) is None:
                raise RuntimeError(f"no worker answers GET {worker_url}/health")
        else:
            assert opts.processor is not None
            worker = WorkerProcess.runtime(opts.processor, opts.out / "worker.log")
            await asyncio.to_thread(worker.start)
            worker_url = worker.url
        await stream_once(opts, worker_url, server, segments, report)
    except Exception as exc:
        report.error = str(exc)
    finally:
        if worker is not None:
            await asyncio.to_thread(worker.stop)
        await asyncio.to_thread(server.stop)
    if report.frames_in and 0 < report.frames_out < 0.9 * report.frames_in and "max_framerate" not in opts.params:
        report.note = (
            "workers drop input frames above max_framerate (24 fps by default in byoc-runtime and PyTrickle); "
            """--params '{"max_framerate": 30}' lets a 30 fps input through"""
        )
    if report.error is None and report.frames_out == 0:
        where = f"; worker log: {worker.log_path}" if worker is not None else ""
        report.error = f"no output frames arrived on the output channel within {opts.first_output_timeout:g} s{where}"
    (opts.out / "report.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    return report


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, got {text!r}") from None
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise argparse.ArgumentTypeError(f"size must be positive and even, got {text!r}")
    return width, height


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="byoc-dev-stream",
        description="Run one stream through a BYOC worker on a local trickle server and report what came out.",
    )
    worker = parser.add_mutually_exclusive_group()
    worker.add_argument("--processor", help="start byoc-runtime with this processor (built-in name or module:Class)")
    worker.add_argument("--worker-url", help="use a worker already running here instead (e.g. a PyTrickle one)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--input", type=Path, help="media file to publish (transcoded to H.264 + Opus MPEG-TS)")
    source.add_argument("--generate", action="store_true", help="publish a generated test pattern (the default)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of input to publish (default 5)")
    parser.add_argument("--size", type=parse_size, default=(512, 512), help="stream width x height (default 512x512)")
    parser.add_argument("--params", type=json.loads, default={}, help="extra JSON params for /stream/start")
    parser.add_argument("--out", type=Path, default=Path("devstream-out"), help="where the PNG, report and log go")
    parser.add_argument("--first-output-timeout", type=float, default=20.0, help="seconds to wait for any output")
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    if not isinstance(args.params, dict):
        parser.error("--params must be a JSON object")
    if args.input is not None and not args.input.exists():
        parser.error(f"--input {args.input}: no such file")
    return Options(
        processor=None if args.worker_url else (args.processor or "passthrough"),
        worker_url=args.worker_url,
        input=args.input,
        seconds=args.seconds,
        width=args.size[0],
        height=args.size[1],
        out=args.out,
        params=args.params,
        first_output_timeout=args.first_output_timeout,
    )


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    report = asyncio.run(run(opts))
    print(report.text())
    if report.error:
        print(f"byoc-dev-stream: {report.error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
