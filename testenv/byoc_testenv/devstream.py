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

The pieces are public because the runtime benchmark (``benchmarks/runtime``) drives workers the same way:
``VideoTimeline`` (when each video frame of an MPEG-TS byte stream was complete), ``split_frames`` and
``publish_paced`` (real-time input), ``WorkerProcess`` (a worker subprocess on a free port).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from byoc_testenv.polling import free_port

TS_PACKET = 188
PTS_HZ = 90_000
CHANNEL_SUFFIXES = {
    "": "video/mp2t",
    "-out": "video/mp2t",
    "-control": "application/json",
    "-events": "application/json",
    "-data": "application/jsonl",
}


# -- MPEG-TS timing -----------------------------------------------------------------------------------------


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


# -- input: publishing in real time --------------------------------------------------------------------------


@dataclass
class InputLog:
    """What was published: when each segment started and when each frame was complete on the wire."""

    segment_start: list[float] = field(default_factory=list)
    segment_of: dict[int, int] = field(default_factory=dict)  # pts -> segment index
    frame_sent: dict[int, float] = field(default_factory=dict)  # pts -> time


async def publish_paced(
    url: str,
    segments: Sequence[Sequence[FramePiece]],
    log: InputLog,
    *,
    t0: float | None = None,
    close: bool = True,
    session: Any = None,
) -> None:
    """Publish pre-split segments in real time: frame k's bytes at ``t0 + (pts_k - pts_0) / 90 kHz``.

    One streaming POST per segment, as a gateway's segmenter writes them. ``close`` deletes the channel at the
    end, which tells the worker the input is over.
    """
    from byoc_runtime import trickle

    first = next((s[0].pts for s in segments if s), 0)
    start = time.monotonic() if t0 is None else t0
    publisher = trickle.Publisher(url, mime_type="video/mp2t", session=session)
    try:
        for index, pieces in enumerate(segments):
            if not pieces:
                continue
            async with publisher.segment() as writer:
                for k, piece in enumerate(pieces):
                    due = start + (piece.pts - first) / PTS_HZ
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    if k == 0:
                        log.segment_start.append(time.monotonic())
                    await writer.write(piece.data)
                    log.frame_sent[piece.pts] = time.monotonic()
                    log.segment_of[piece.pts] = index
    finally:
        await publisher.close(delete=close)


# -- output: reading it back ---------------------------------------------------------------------------------


@dataclass
class OutputLog:
    frame_published: dict[int, float] = field(default_factory=dict)  # pts -> arrival of its last byte
    segments: list[bytes] = field(default_factory=list)  # kept only when asked
    first_byte: float | None = None
    ended: bool = False
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # set whenever frames complete


async def read_output(
    url: str,
    log: OutputLog,
    *,
    keep: bool = False,
    on_frames: Callable[[list[tuple[int, float]]], None] | None = None,
    session: Any = None,
) -> None:
    """Read a media channel until it ends, timing every video frame (``VideoTimeline``)."""
    from byoc_runtime import trickle

    timeline = VideoTimeline()
    with contextlib.suppress(trickle.TrickleError):
        async with trickle.Subscriber(url, session) as subscriber:
            async for segment in subscriber:
                body = bytearray() if keep else None
                done: list[tuple[int, float]] = []
                try:
                    async for chunk in segment.iter_chunks():
                        now = time.monotonic()
                        if log.first_byte is None:
                            log.first_byte = now
                        done += timeline.feed(chunk, now)
                        if body is not None:
                            body += chunk
                        if done:
                            _record(log, done, on_frames)
                            done = []
                except trickle.SegmentError:
                    pass
                _record(log, timeline.end(), on_frames)
                if body is not None:
                    log.segments.append(bytes(body))
    log.ended = True


def _record(
    log: OutputLog, frames: list[tuple[int, float]], on_frames: Callable[[list[tuple[int, float]]], None] | None
) -> None:
    for pts, t in frames:
        log.frame_published.setdefault(pts, t)
    if frames:
        log.arrived.set()
    if on_frames is not None and frames:
        on_frames(frames)


async def wait_output(out: OutputLog, done: Callable[[], bool], quiet: float) -> bool:
    """Wait until ``done()`` holds (checked whenever output frames arrive) or no frame arrives for ``quiet``
    seconds; returns ``done()``."""
    while not done():
        out.arrived.clear()
        try:
            await asyncio.wait_for(out.arrived.wait(), quiet)
        except TimeoutError:
            return done()
    return True


async def wait_caught_up(sent: InputLog, out: OutputLog, quiet: float = 3.0) -> bool:
    """After the input ended: until the last input frame is out, or the output stays quiet for ``quiet`` s."""
    last = max(sent.frame_sent, default=None)
    return await wait_output(out, lambda: last is None or last in out.frame_published, quiet)


async def read_events(url: str, into: list[Any], session: Any = None) -> None:
    from byoc_runtime import trickle

    with contextlib.suppress(trickle.TrickleError):
        async with trickle.JsonSubscriber(url, session) as subscriber:
            async for message in subscriber:
                into.append(message)


def event_type(message: Any) -> str:
    if isinstance(message, dict):
        inner = message.get("event", message)
        if isinstance(inner, dict) and inner.get("type"):
            return str(inner["type"])
    return "unknown"


# -- latency -------------------------------------------------------------------------------------------------


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


# -- a worker in a subprocess --------------------------------------------------------------------------------




def http_json(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """A small blocking JSON request (the REST calls are few; media goes through aiohttp)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def worker_health(base_url: str) -> str | None:
    try:
        status, body = http_json("GET", base_url + "/health")
    except OSError:
        return None
    return body.get("status") if status == 200 and isinstance(body, dict) else None


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies (Linux), so a killed run leaves no worker."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class WorkerProcess:
    """A worker process on 127.0.0.1 (``byoc-runtime``, or any command serving the worker REST contract).

    ``argv`` gets ``{port}`` substituted; stdout and stderr go to ``log_path``.
    """

    def __init__(self, argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def runtime(cls, processor: str, log_path: Path, *extra: str, env: dict[str, str] | None = None) -> WorkerProcess:
        """``byoc-runtime`` (run as ``python -m byoc_runtime.main`` so no console script is needed)."""
        argv = [
            sys.executable,
            "-m",
            "byoc_runtime.main",
            "--processor",
            processor,
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            *extra,
        ]
        # A module:Class processor is usually importable from where the command runs.
        path = os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH", "")) if p)
        return cls(argv, log_path, env={**os.environ, "PYTHONPATH": path, **(env or {})})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, limit_s: float = 120.0) -> None:
        """Start and wait until ``/health`` says IDLE (model loaded)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, preexec_fn=_die_with_parent
            )
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            if worker_health(self.url) in ("IDLE", "OK"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker not IDLE after {limit_s:.0f} s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (all its threads), from /proc."""
        if self.proc is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, limit_s: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(limit_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> WorkerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- input sources -------------------------------------------------------------------------------------------


def generated_segments(width: int, height: int, seconds: float, fps: int = 30) -> list[bytes]:
    """The runtime's synthetic source: colour bars, moving box, flash + beep each second (H.264 + Opus)."""
    from byoc_runtime.media.testsource import SourceSpec, generate_segments

    return generate_segments(SourceSpec(width=width, height=height, fps=fps, seconds=seconds))


def file_segments(path: Path, seconds: float, segment_seconds: float = 1.0) -> list[bytes]:
    """Transcode the first ``seconds`` of a media file into 1 s MPEG-TS segments (H.264 no B-frames + Opus)."""
    import av
    from byoc_runtime.media.encode import BufferedSink, EncoderSettings, SegmentEncoder, collect_segments

    sink = BufferedSink()
    encoder = SegmentEncoder(sink, EncoderSettings(gop_seconds=segment_seconds, preset="ultrafast"))
    tb = Fraction(1, PTS_HZ)
    with av.open(str(path)) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        if video is None:
            raise ValueError(f"{path} has no video stream")
        if audio is not None:
            encoder.expect_audio()
        start: float | None = None
        for packet in container.demux(*[s for s in (video, audio) if s is not None]):
            for frame in packet.decode():
                # Only video and audio are demuxed: no subtitle frame comes here.
                if not isinstance(frame, av.VideoFrame | av.AudioFrame) or frame.time is None:
                    continue
                if start is None:
                    start = frame.time
                t = frame.time - start
                if t < 0 or t >= seconds:
                    continue
                if isinstance(frame, av.VideoFrame):
                    encoder.encode_video(frame, round(t * PTS_HZ), tb)
                else:
                    encoder.encode_audio(frame, round(t * PTS_HZ), tb)
    encoder.close()
    return collect_segments(sink.drain())


# -- pictures ------------------------------------------------------------------------------------------------


def decode_frame(segments: Sequence[bytes], pts: int) -> Any:
    """The decoded ``av.VideoFrame`` with this PTS, or None (each segment decoded on its own, as a player
    joining at that segment would)."""
    import av

    for data in segments:
        if pts not in frame_pts(data):
            continue
        with contextlib.suppress(av.error.FFmpegError):  # opening too: a segment may not be readable alone
            with av.open(io.BytesIO(data), mode="r", format="mpegts") as container:
                for frame in container.decode(video=0):
                    if frame.pts == pts:
                        return frame
    return None


def write_png(rgb: Any, path: Path) -> None:
    """uint8 (H, W, 3) RGB -> PNG with PyAV's encoder (no imaging library needed)."""
    import av
    import numpy as np

    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
    codec.time_base = Fraction(1, 1)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    packets = list(codec.encode(frame)) + list(codec.encode(None))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(bytes(p) for p in packets))


def side_by_side(input_frame: Any, output_frame: Any, path: Path) -> None:
    """Input (scaled and centre-cropped to the output's size, as the worker does) left, output right."""
    import numpy as np
    from byoc_runtime.media.convert import video_frame_to_rgb

    out = output_frame.to_ndarray(format="rgb24")
    height, width = out.shape[:2]
    left = video_frame_to_rgb(input_frame, width, height, "BILINEAR")
    write_png(np.hstack([left, out]), path)


# -- the flow ------------------------------------------------------------------------------------------------


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
