"""A/B: one stream through pytrickle's own ``StreamServer`` and through ``byoc-runtime``, each in its own
process, fed the same 720p H.264+Opus segments over a real trickle server. Not a test.

    pip download --no-deps pytrickle==0.1.6 nvidia-ml-py -d /tmp/pt
    pip install --no-deps --target /tmp/ptlib /tmp/pt/*.whl
    PYTRICKLE_PATH=/tmp/ptlib python tests/runtime/bench_vs_pytrickle.py [speed] [seconds]

``speed`` is how many times faster than real time the input is streamed (1 = live).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from byoc_runtime.media.testsource import SourceSpec, generate_segments
from byoc_testenv.trickle import TrickleServer

from tests.runtime.support import Stream, decode_segments, publish

PYTRICKLE_SERVER = """
import asyncio, sys
from pytrickle import FrameProcessor, StreamServer
class Passthrough(FrameProcessor):
    async def load_model(self, **kw): pass
    async def process_video_async(self, frame): return frame
    async def process_audio_async(self, frame): return [frame]
    async def update_params(self, params): pass
asyncio.run(StreamServer(frame_processor=Passthrough(), port=int(sys.argv[1]), host="127.0.0.1").run_forever())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(process: psutil.Process) -> float:
    return sum(p.cpu_times().user + p.cpu_times().system for p in [process, *process.children(recursive=True)])


async def run(kind: str, segments: list[bytes], speed: float, server: TrickleServer) -> None:
    port = free_port()
    env = dict(os.environ)
    if kind == "pytrickle":
        env["PYTHONPATH"] = os.environ.get("PYTRICKLE_PATH", "")
        cmd = [sys.executable, "-c", PYTRICKLE_SERVER, str(port)]
    else:
        cmd = [sys.executable, "-m", "byoc_runtime.main", "--port", str(port), "--host", "127.0.0.1"]
        cmd += ["--processor", "passthrough", "--log-level", "WARNING"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: ASYNC220
    ps = psutil.Process(proc.pid)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{port}/health") as resp:
                        if (await resp.json())["status"] == "IDLE":
                            break
                await asyncio.sleep(0.1)
            stream = Stream.create(server, prefix=kind)
            stream.listen()
            cpu0, started = cpu_seconds(ps), time.perf_counter()
            body = stream.start_body({"width": 512, "height": 512, "max_framerate": 60})
            async with http.post(f"http://127.0.0.1:{port}/stream/start", json=body) as resp:
                assert resp.status == 200, await resp.text()
            await publish(stream.url(), segments, segment_seconds=1.0 / speed)
            with contextlib.suppress(TimeoutError):
                await stream.wait_output_closed(20)
            elapsed, cpu = time.perf_counter() - started, cpu_seconds(ps) - cpu0
            await stream.close()
    finally:
        proc.terminate()
        proc.wait(10)
    out = decode_segments(stream.output)
    frames = len(out.video)
    audio = sum(len(s) for _, s in out.audio) / out.audio_rate
    print(
        f"{kind:>10} x{speed:g}: {frames}/{len(segments) * 30} frames out, output ended {elapsed:.1f} s after start, "
        f"CPU {cpu:.1f} s ({cpu / max(frames, 1) * 1000:.1f} ms/frame), audio {audio:.1f} s"
    )


async def main() -> None:
    speed = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    segments = generate_segments(SourceSpec(width=1280, height=720, seconds=seconds, audio_codec="libopus"))
    server = TrickleServer.start()
    try:
        for kind in ("byoc", "pytrickle") if os.environ.get("PYTRICKLE_PATH") else ("byoc",):
            await run(kind, segments, speed, server)
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
