"""Throughput of the media path: decode -> scale/crop to a (1, H, W, 3) tensor -> processor -> encode.

Not a test (pytest does not collect it). Run:

    python tests/runtime/bench_pipeline.py [--seconds 10] [--src 1280x720] [--size 512] [--processor passthrough]
    PYTHONPATH=/path/to/pytrickle-0.1.6 python tests/runtime/bench_pipeline.py --pytrickle   # baseline too

``ours-serial`` runs every stage on one thread (CPU cost per frame); ``ours-session`` runs a real session
(decode, processor and encode threads, trickle on loopback) with input published as fast as the runtime
takes it and the pacer off, so it shows the pipelined throughput. ``pytrickle`` runs pytrickle's own
``decode_av`` and ``encode_av`` (v0.1.6) on the same input, with the same passthrough in between.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import queue
import sys
import threading
import time
from pathlib import Path

import av
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # for tests.runtime.support

from byoc_runtime.frames import FrameOrigin, VideoFrame
from byoc_runtime.media.convert import rgb_to_tensor, rgb_to_video_frame, tensor_to_rgb, video_frame_to_rgb
from byoc_runtime.media.decode import SegmentDecoder, SegmentReader
from byoc_runtime.media.encode import BufferedSink, EncoderSettings, SegmentEncoder
from byoc_runtime.media.testsource import SourceSpec, generate_segments
from byoc_runtime.processors.loader import resolve_processor


def bench_serial(segments: list[bytes], size: tuple[int, int], processor_name: str) -> tuple[int, float]:
    torch.set_num_threads(1)  # as the runtime does on 2 cores (worker.torch_threads)
    processor = resolve_processor(processor_name)()
    asyncio.run(processor.ensure_model_loaded())
    loop = asyncio.new_event_loop()
    decoder = SegmentDecoder()
    sink = BufferedSink()
    encoder = SegmentEncoder(sink, EncoderSettings(gop_seconds=1.0))
    encoder.expect_audio()
    frames = 0
    started = time.perf_counter()
    for data in segments:
        reader = SegmentReader()
        reader.feed(data)
        reader.finish()
        decoded: list = []
        decoder.decode(reader, decoded.append)
        for item in decoded:
            if isinstance(item, av.AudioFrame):
                encoder.encode_audio(item, item.pts, item.time_base)
                continue
            rgb = video_frame_to_rgb(item, *size)
            tensor = rgb_to_tensor(rgb)
            frame = VideoFrame(tensor, item.pts, item.time_base)
            frame.origin = FrameOrigin(tensor, tensor._version, rgb)
            out = loop.run_until_complete(processor.process_video_async(frame))
            origin = out.origin
            image = origin.rgb if origin is not None and origin.matches(out.tensor) else tensor_to_rgb(out.tensor)
            encoder.encode_video(rgb_to_video_frame(image), out.timestamp, out.time_base)
            frames += 1
            sink.drain()
    encoder.close()
    return frames, time.perf_counter() - started


def bench_session(segments: list[bytes], size: tuple[int, int], processor_name: str, speed: float) -> tuple[int, float]:
    from byoc_runtime import queues
    from byoc_testenv.trickle import TrickleServer

    queues.Pacer.release_at = lambda self, pts, arrival: arrival  # type: ignore[method-assign]  # no pacing
    import dataclasses

    from tests.runtime.support import Stream, publish, running_worker

    async def run() -> tuple[int, float]:
        server = TrickleServer.start()
        try:
            async with running_worker(processor_name, max_framerate=60) as rt:
                # Measure throughput, not drop policy: queues big enough to hold the whole input.
                rt.worker.settings = dataclasses.replace(rt.worker.settings, video_queue=100_000, encode_queue=100_000)
                await rt.wait_health("IDLE", 60)
                stream = Stream.create(server)
                stream.listen()
                started = time.perf_counter()
                await rt.post("/stream/start", json=stream.start_body({"width": size[0], "height": size[1]}))
                # Input streamed ``speed`` times faster than real time; what the runtime cannot take in time
                # the trickle server's 5-segment window drops, so frames out / time is the sustained rate.
                await publish(stream.url(), segments, segment_seconds=1.0 / speed)
                await stream.wait_ended(300)
                elapsed = time.perf_counter() - started
                await stream.close()
                _, metrics = await rt.get("/metrics")
        finally:
            server.stop()
        line = next(x for x in metrics.splitlines() if x.startswith('byoc_frames_out_total{kind="video"}'))
        return int(float(line.split()[-1])), elapsed

    return asyncio.run(run())


def bench_pytrickle(segments: list[bytes], size: tuple[int, int]) -> tuple[int, float]:
    from pytrickle.decoder import decode_av
    from pytrickle.encoder import encode_av
    from pytrickle.frames import AudioOutput, VideoOutput
    from pytrickle.frames import VideoFrame as PtVideoFrame

    frames: queue.Queue = queue.Queue()
    metadata: list = []
    started = time.perf_counter()

    def on_frame(frame: object) -> None:
        if isinstance(frame, PtVideoFrame):
            frames.put(VideoOutput(frame))  # passthrough
        else:
            frames.put(AudioOutput([frame]))

    def decode() -> None:
        decode_av(io.BytesIO(b"".join(segments)), on_frame, metadata.append, *size, max_framerate=60)
        frames.put(None)

    count = 0

    def next_frame() -> object:
        nonlocal count
        item = frames.get()
        if isinstance(item, VideoOutput):
            count += 1
        return item

    def on_output(read_file, write_file, url) -> None:  # drain each segment pipe like a publisher would
        threading.Thread(target=lambda: read_file.read(), daemon=True).start()

    decoder = threading.Thread(target=decode)
    decoder.start()
    encode_av(next_frame, on_output, lambda: metadata[0] if metadata else None, audio_codec="libopus")
    decoder.join()
    return count, time.perf_counter() - started


def with_cpu(fn, *args):
    """Run a bench; add the process CPU seconds (all threads) it used."""
    cpu = time.process_time()
    frames, elapsed = fn(*args)
    return frames, elapsed, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--src", default="1280x720")
    parser.add_argument("--size", default="512x512", help="processor input size WxH")
    parser.add_argument("--speed", type=float, default=5.0, help="session input rate, times real time")
    parser.add_argument("--processor", default="passthrough")
    parser.add_argument("--pytrickle", action="store_true", help="also run pytrickle's decode_av/encode_av")
    parser.add_argument("--no-session", action="store_true")
    args = parser.parse_args()
    width, height = (int(v) for v in args.src.split("x"))
    size = tuple(int(v) for v in args.size.split("x"))
    segments = generate_segments(SourceSpec(width=width, height=height, seconds=args.seconds, audio_codec="libopus"))
    print(f"input: {args.src} 30 fps H.264+Opus, {args.seconds:.0f} s, {len(segments)} segments", end=" ")
    print(f"-> {args.size} {args.processor}")
    results = {"ours-serial": with_cpu(bench_serial, segments, size, args.processor)}
    if not args.no_session:
        results["ours-session"] = with_cpu(bench_session, segments, size, args.processor, args.speed)
    if args.pytrickle:
        results["pytrickle"] = with_cpu(bench_pytrickle, segments, size)
    for name, (frames, elapsed, cpu) in results.items():
        rate = f"{frames} frames in {elapsed:.2f} s = {frames / elapsed:.1f} fps"
        print(f"{name:>13}: {rate}, {cpu / frames * 1000:.1f} ms CPU/frame")


if __name__ == "__main__":
    main()
