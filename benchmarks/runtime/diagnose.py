"""``python -m benchmarks.runtime.diagnose``: the experiments behind the analysis in results.md (~6 minutes).

- ``threads``: CPU per thread of our runtime under closed-loop load, 1280x720 x 3 sessions: is one thread (the
  event loop is the main thread) the limit?
- ``audio``: added latency with and without an audio track, ours and PyTrickle, real time 512x512: what the
  audio/video interleaving in the output muxers costs.
- ``whatif``: added latency of our runtime as is and without the jitter buffer's hold (``whatif_runtime.py``),
  PyTrickle beside, real time, one session.
- ``demux``: added latency with and without audio, our runtime against ``$BYOC_BENCH_BASELINE``'s (a source tree),
  real time 512x512, one session (``demux/analysis.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from byoc_testenv.devstream.worker import WorkerProcess
from byoc_testenv.trickle import TrickleServer

from . import drive
from .measurement import Measurement
from .run import CACHE, log
from .source import load_clip
from .workers import Workers


def _threads(pid: int) -> dict[int, tuple[str, float]]:
    """tid -> (OS thread name, CPU seconds so far)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat.rsplit(")", 1)[1].split()
        out[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / ticks)
    return out


def threads(server: TrickleServer, sessions: int = 3, warmup: float = 3.0, window: float = 12.0) -> None:
    """Per-thread CPU of our runtime (threads named by ``named_threads``) inside a closed-loop window."""
    clip = load_clip(1280, 720, 90, CACHE)
    root = Path(__file__).resolve().parents[2]
    runtime_flags = [
        "--processor",
        "passthrough",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--capacity",
        str(sessions),
    ]
    argv = [sys.executable, "-m", "benchmarks.runtime.named_threads", *runtime_flags]
    proc = WorkerProcess(argv, CACHE / "logs" / "ours-named.log", env={**os.environ, "PYTHONPATH": str(root)})
    w = Workers("ours", [proc])
    w.start()
    pid = proc.proc.pid  # type: ignore[union-attr]

    async def sample() -> tuple[dict[int, tuple[str, float]], dict[int, tuple[str, float]], Measurement]:
        run = asyncio.create_task(drive.throughput(w, server, clip, sessions, warmup, window))
        await asyncio.sleep(drive.SETTLE_S + warmup)
        before = _threads(pid)
        await asyncio.sleep(window)
        after = _threads(pid)
        return before, after, await run

    try:
        before, after, m = asyncio.run(sample())
    finally:
        w.stop()
    by_name: dict[str, float] = {}
    for tid, (name, cpu) in after.items():
        label = "event loop (main)" if tid == pid else re.sub(r"-bench.*$|_\d+$", "", name)
        by_name[label] = by_name.get(label, 0.0) + cpu - before.get(tid, (name, 0.0))[1]
    total = sum(by_name.values())
    top = ", ".join(f"{name} {100 * cpu / window:.0f}%" for name, cpu in sorted(by_name.items(), key=lambda x: -x[1]))
    log(
        f"threads {clip.name} x{sessions} closed loop: {m.fps:.1f} fps, process {100 * total / window:.0f}% of a core"
        f" ({1000 * total / max(m.frames_out, 1):.1f} ms/frame); by thread (% of a core): {top}"
    )


def audio(server: TrickleServer) -> None:
    logs = CACHE / "logs"
    clips = {"A/V": load_clip(512, 512, 90, CACHE), "video only": load_clip(512, 512, 20, CACHE, audio_track=False)}
    workers = {"ours": Workers.ours(1, logs), "pytrickle": Workers.pytrickle(1, logs)}
    for w in workers.values():
        w.start()
    try:
        for name, clip in clips.items():
            for impl, w in workers.items():
                m = asyncio.run(drive.latency(w, server, clip, 1, 12, 3))
                w.wait_idle()
                log(
                    f"audio {impl} {name}: added p50 {m.added_p50_ms:.1f} ms p95 {m.added_p95_ms:.1f} ms, "
                    f"{m.frames_out}/{m.frames_in} frames"
                )
    finally:
        for w in workers.values():
            w.stop()


def whatif(server: TrickleServer, repeat: int = 2) -> None:
    """Added latency of our runtime as is and with the changes of ``whatif_runtime`` patched in, PyTrickle beside."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    variants = {"as is": [], "no hold": ["--no-hold"]}
    workers = {}
    for name, patches in variants.items():
        argv = [sys.executable, "-m", "benchmarks.runtime.whatif_runtime", *patches, "--processor", "passthrough",
                "--host", "127.0.0.1", "--port", "{port}"]  # fmt: skip
        workers[name] = Workers("ours", [WorkerProcess(argv, CACHE / "logs" / "ours-whatif.log", env=env)])
    workers["PyTrickle"] = Workers.pytrickle(1, CACHE / "logs")
    for w in workers.values():
        w.start()
    try:
        for size in ((512, 512), (1280, 720)):
            clip = load_clip(*size, 90, CACHE)
            for name, w in workers.items():
                runs = []
                for _ in range(repeat):
                    runs.append(asyncio.run(drive.latency(w, server, clip, 1, 12, 3)))
                    w.wait_idle()
                m = min(runs, key=lambda r: r.added_p50_ms or float("inf"))
                log(
                    f"whatif {clip.name} {name}: added p50 {m.added_p50_ms:.1f} ms p95 {m.added_p95_ms:.1f} ms, "
                    f"{m.frames_out}/{m.frames_in} frames, queue {m.stages_ms.get('queue', 0.0):.1f} ms "
                    f"(best of {repeat}, load {os.getloadavg()[0]:.1f})"
                )
    finally:
        for w in workers.values():
            w.stop()


def demux(server: TrickleServer, repeat: int = 2) -> None:
    """Added latency with and without an audio track, our runtime against the one in ``$BYOC_BENCH_BASELINE`` (a
    source tree, e.g. from ``git archive main runtime``), real time 512x512: what the input demuxer gains."""
    baseline = os.environ.get("BYOC_BENCH_BASELINE")
    if not baseline:
        log("demux: set BYOC_BENCH_BASELINE to a source tree to compare against; skipped")
        return
    logs = CACHE / "logs"
    clips = {"A/V": load_clip(512, 512, 90, CACHE), "video only": load_clip(512, 512, 20, CACHE, audio_track=False)}
    workers = {"ours-before": Workers.baseline(1, logs, Path(baseline)), "ours": Workers.ours(1, logs)}
    for w in workers.values():
        w.start()
    try:
        for _ in range(repeat):
            for name, clip in clips.items():
                for impl, w in workers.items():
                    m = asyncio.run(drive.latency(w, server, clip, 1, 12, 3))
                    w.wait_idle()
                    log(
                        f"demux {impl} {name}: added p50 {m.added_p50_ms:.1f} ms p95 {m.added_p95_ms:.1f} ms, "
                        f"{m.frames_out}/{m.frames_in} frames (load {os.getloadavg()[0]:.1f})"
                    )
    finally:
        for w in workers.values():
            w.stop()


EXPERIMENTS = {"threads": threads, "audio": audio, "whatif": whatif, "demux": demux}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.runtime.diagnose", description=__doc__)
    parser.add_argument("experiments", nargs="*", choices=[*EXPERIMENTS, []], help="default: all")
    args = parser.parse_args(argv)
    server = TrickleServer.start()
    try:
        for name in args.experiments or EXPERIMENTS:
            EXPERIMENTS[name](server)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
