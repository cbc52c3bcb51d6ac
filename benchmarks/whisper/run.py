"""Whisper benchmark: how fast the ``whisper`` processor transcribes on this machine, and how long speech takes
to come out as a transcript on the data channel.

1. Real-time factor (RTF = transcription time / audio time) of one window, through the processor's own
   ``LoadedModel.transcribe`` (one encoder pass, one decode bounded by ``max_tokens``), for a checkpoint of the
   released ``tiny`` dimensions and for the tests' ``mini`` one, both with random weights (nothing is
   downloaded; random weights decode arbitrary tokens, so the bound decides the decode's length).
2. Latency: a real worker (``byoc-runtime --processor whisper``, in this process) on a real trickle server,
   fed speech-like audio in real time; for each transcript record, the time from the moment the input reached
   the record's ``end`` (stream clock) to the record's arrival on the ``-data`` channel.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import torch
from aiohttp import web
from byoc_runtime import trickle
from byoc_runtime.api.server import create_app
from byoc_runtime.config import RuntimeConfig
from byoc_runtime.processors.loader import resolve_processor
from byoc_runtime.processors.pool import ProcessorPool
from byoc_runtime.processors.speech.model import SHARED_MODELS, locate_weights, pick_device
from byoc_runtime.processors.speech.options import TranscriberSettings, stream_options
from byoc_runtime.processors.speech.testmodel import MINI, TINY, write_random_checkpoint
from byoc_runtime.processors.speech.windows import Window
from byoc_runtime.worker import Worker
from byoc_testenv.polling import free_port
from byoc_testenv.trickle import TrickleServer

from . import report
from .speech import segments

HERE = Path(__file__).parent
CHECKPOINTS = {"tiny": TINY, "mini": MINI}


@dataclass
class RtfResult:
    model: str
    window_s: float
    max_tokens: int
    seconds: list[float]  # transcription time of each window

    @property
    def rtf(self) -> float:
        """Of the best window: the machine is shared, and other jobs only ever make a window slower."""
        return min(self.seconds) / self.window_s


@dataclass
class LatencyResult:
    model: str
    window_s: float
    max_tokens: int
    audio_s: float
    records: int
    latencies: list[float]
    skipped_events: int


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def measure_rtf(folder: Path, model: str, window_s: float, max_tokens: int, repeat: int) -> RtfResult:
    settings = TranscriberSettings(model=model, model_dir=folder)
    loaded = SHARED_MODELS.get(locate_weights(settings, model), pick_device("auto")).result()
    options = stream_options({"window_s": window_s, "max_tokens": max_tokens, "language": "en"}, settings)
    rng = np.random.default_rng(0)
    samples = (0.1 * rng.standard_normal(round(window_s * 16_000))).astype(np.float32)
    loaded.transcribe(Window(0.0, samples), options)  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        loaded.transcribe(Window(0.0, samples), options)
        times.append(time.perf_counter() - started)
    return RtfResult(model, window_s, max_tokens, times)


async def measure_latency(
    server: TrickleServer, folder: Path, model: str, window_s: float, max_tokens: int, audio_s: float
) -> LatencyResult:
    params = {"model": model, "model_dir": str(folder), "window_s": window_s, "max_tokens": max_tokens}
    params |= {"overlap_s": min(1.0, window_s / 4), "language": "en"}
    config = RuntimeConfig(processor="whisper", params=params)
    worker = Worker(config, ProcessorPool(resolve_processor("whisper"), 1, config.params))
    runner = web.AppRunner(create_app(worker))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    sid = f"bench-{model}-{window_s:g}-{max_tokens}-{time.monotonic_ns()}"
    for suffix, mime in (("", "video/mp2t"), ("-out", "video/mp2t"), ("-data", "application/jsonl")):
        server.create_channel(sid + suffix, mime)
    server.create_channel(sid + "-events", "application/json")
    arrivals: list[tuple[float, dict[str, Any]]] = []
    events: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http:

        async def read(suffix: str, into: Any) -> None:
            with contextlib.suppress(trickle.TrickleError):
                async with trickle.JsonSubscriber(server.url(sid + suffix), session=http) as sub:
                    async for message in sub:
                        into(message)

        def on_data(batch: Any) -> None:
            now = time.monotonic()
            arrivals.extend((now, item) for item in batch if isinstance(item, dict))

        readers = [
            asyncio.create_task(read("-data", on_data)),
            asyncio.create_task(read("-events", events.append)),
        ]
        while worker.pool.state.value != "READY":  # noqa: ASYNC110 (the model loads in the worker)
            await asyncio.sleep(0.1)
        body = {"gateway_request_id": sid, "params": {}} | {
            f"{name}_url": server.url(sid + suffix)
            for name, suffix in (("subscribe", ""), ("publish", "-out"), ("events", "-events"), ("data", "-data"))
        }
        async with http.post(f"http://127.0.0.1:{port}/stream/start", json=body, headers={"X-Stream-Id": sid}) as r:
            assert r.status == 200, await r.text()
        publisher = trickle.Publisher(server.url(sid), session=http)
        # Real time: segment k (stream time k..k+1 s) is written over that second; the input has reached
        # stream time t at about started + t.
        started = time.monotonic()
        for k, data in enumerate(segments(audio_s)):
            async with publisher.segment() as writer:
                for part in range(10):
                    await writer.write(data[part * len(data) // 10 : (part + 1) * len(data) // 10])
                    await asyncio.sleep(max(0.0, started + k + (part + 1) / 10 - time.monotonic()))
        await asyncio.sleep(window_s + 10)  # the last windows' transcripts
        await publisher.close(delete=True)
        await asyncio.sleep(1)
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    await runner.cleanup()
    latencies = [at - (started + item["end"]) for at, item in arrivals if item.get("type") == "transcript"]
    behind = sum(1 for e in events if e.get("event", {}).get("state") == "behind")
    return LatencyResult(model, window_s, max_tokens, audio_s, len(latencies), latencies, behind)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.whisper", description=__doc__)
    parser.add_argument("--windows", nargs="+", type=float, default=[3.0, 5.0, 10.0])
    parser.add_argument("--max-tokens", nargs="+", type=int, default=[32, 96])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--report-only", action="store_true")
    return parser.parse_args(argv)


async def run_latency(folder: Path, audio_s: float) -> list[LatencyResult]:
    server = TrickleServer.start()
    try:
        return [
            await measure_latency(server, folder, model, window_s, 32, audio_s)
            for model, window_s in (("mini", 3.0), ("tiny", 3.0), ("tiny", 5.0))
        ]
    finally:
        server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results_file = args.out / "results.json"
    if not args.report_only:
        measured_on = machine()  # before the worker sets its own torch thread count
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for name, dims in CHECKPOINTS.items():
                write_random_checkpoint(folder / f"{name}.pt", dims)
            rtf = [
                measure_rtf(folder, model, window, tokens, args.repeat)
                for model in CHECKPOINTS
                for window in args.windows
                for tokens in args.max_tokens
            ]
            for r in rtf:
                print(f"rtf {r.model} window {r.window_s:g}s max_tokens {r.max_tokens}: {r.rtf:.2f}", flush=True)
            latency = asyncio.run(run_latency(folder, args.latency_seconds))
        raw = {
            "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": measured_on,
            "load_avg_end": round(os.getloadavg()[0], 2),
            "rtf": [asdict(r) | {"rtf": r.rtf} for r in rtf],
            "latency": [asdict(r) for r in latency],
        }
        results_file.write_text(json.dumps(raw, indent=2) + "\n")
    report.write(json.loads(results_file.read_text()), args.out)
    return 0
