"""Built-in processors, loading by name / module:Class / file, and the processor host and pool."""

from __future__ import annotations

import asyncio
import textwrap
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from byoc_runtime.frames import VideoFrame
from byoc_runtime.processors.builtin import GrayscaleProcessor, GreenTintProcessor, PassthroughProcessor
from byoc_runtime.processors.cartoon import CartoonProcessor
from byoc_runtime.processors.handlers import CallbackProcessor
from byoc_runtime.processors.host import HostState, ProcessorHost, ProcessorTimeout
from byoc_runtime.processors.loader import BUILTIN_PROCESSORS, ProcessorLoadError, resolve_processor
from byoc_runtime.processors.pool import PoolState, ProcessorPool


def frame(h: int = 32, w: int = 48) -> VideoFrame:
    tensor = torch.rand(1, h, w, 3, generator=torch.Generator().manual_seed(0))
    return VideoFrame(tensor, 3000, Fraction(1, 90000))


async def test_passthrough_returns_the_same_tensor() -> None:
    f = frame()
    assert (await PassthroughProcessor().process_video_async(f)).tensor is f.tensor


async def test_grayscale_is_gray_and_keeps_layout() -> None:
    f = frame()
    out = await GrayscaleProcessor().process_video_async(f)
    t = out.tensor
    assert t.shape == f.tensor.shape and out.timestamp == 3000
    assert torch.allclose(t[..., 0], t[..., 1]) and torch.allclose(t[..., 1], t[..., 2])
    assert not torch.equal(f.tensor[..., 0], f.tensor[..., 1])  # input untouched


async def test_grayscale_strength_param() -> None:
    p = GrayscaleProcessor()
    await p.update_params({"strength": "0"})
    f = frame()
    assert torch.allclose((await p.process_video_async(f)).tensor, f.tensor)


async def test_green_tint_pushes_green() -> None:
    p = GreenTintProcessor()
    await p.update_params({"intensity": 0.5})
    f = frame()
    out = (await p.process_video_async(f)).tensor
    assert float(out[..., 1].mean()) > float(f.tensor[..., 1].mean())
    assert float(out[..., 0].mean()) < float(f.tensor[..., 0].mean())


async def test_cartoon_model_runs_and_is_deterministic() -> None:
    a, b = CartoonProcessor(), CartoonProcessor()
    await a.load_model()
    await b.load_model(levels=4)
    f = frame(64, 64)
    out = (await a.process_video_async(f)).tensor
    assert out.shape == (1, 64, 64, 3) and out.dtype == torch.float32 and out.device.type == "cpu"
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    assert torch.equal(out, (await a.process_video_async(f)).tensor)
    assert b.model is not None and b.model.levels == 4
    assert a.model is not None and isinstance(a.model, torch.nn.Module)


def test_builtins_resolve_by_name() -> None:
    for name in BUILTIN_PROCESSORS:
        assert callable(resolve_processor(name))
    assert resolve_processor("grayscale") is GrayscaleProcessor


def test_resolve_module_class_and_file(tmp_path: Path) -> None:
    assert resolve_processor("byoc_runtime.processors.builtin:GreenTintProcessor") is GreenTintProcessor
    source = tmp_path / "my_effect.py"
    source.write_text(
        textwrap.dedent(
            """
            from byoc_runtime.processors import FrameProcessor

            class Invert(FrameProcessor):
                async def process_video_async(self, frame):
                    return frame.replace_tensor(1 - frame.tensor)
            """
        )
    )
    factory = resolve_processor(f"{source}:Invert")
    assert factory().__class__.__name__ == "Invert"


def test_a_factory_building_a_pytrickle_stream_processor_is_served_through_its_gate(tmp_path: Path) -> None:
    # pytrickle's examples build a StreamProcessor in a function; the worker serves its frame gate (skipping,
    # overlay) rather than the StreamProcessor, which has no process_video_async.
    source = tmp_path / "pt_effect.py"
    source.write_text(
        textwrap.dedent(
            """
            from pytrickle import StreamProcessor

            async def invert(frame):
                return frame

            def build():
                return StreamProcessor(video_processor=invert, name="inv", port=0)
            """
        )
    )
    made = resolve_processor(f"{source}:build")()
    assert hasattr(made, "process_video_async") and type(made).__name__ == "FrameGate"
    plain = resolve_processor("byoc_runtime.processors.builtin:GreenTintProcessor")()
    assert type(plain).__name__ == "GreenTintProcessor"


def test_resolve_errors_say_why(tmp_path: Path) -> None:
    with pytest.raises(ProcessorLoadError, match="unknown processor"):
        resolve_processor("no-such-effect")
    with pytest.raises(ProcessorLoadError, match="cannot import"):
        resolve_processor("no_such_module_xyz:Thing")
    with pytest.raises(ProcessorLoadError, match="has no"):
        resolve_processor("byoc_runtime.processors.builtin:Nope")
    with pytest.raises(ProcessorLoadError, match="no such file"):
        resolve_processor(f"{tmp_path}/missing.py:X")


async def test_host_runs_processor_on_its_own_thread() -> None:
    seen: dict[str, object] = {}

    class Probe(PassthroughProcessor):
        def __init__(self) -> None:
            super().__init__()
            seen["init"] = threading.current_thread().name

        async def load_model(self, **kwargs) -> None:
            seen["load"] = (threading.current_thread().name, kwargs)

        async def process_video_async(self, f):
            seen["process"] = threading.current_thread().name
            return f

    host = ProcessorHost(Probe, name="probe")
    await host.start({"model": "tiny"})
    assert host.state is HostState.READY
    await host.call(host.instance.process_video_async, frame())
    assert seen["init"] == seen["load"][0] == seen["process"] == "proc-probe"
    assert seen["load"][1] == {"model": "tiny"}
    assert threading.current_thread().name != "proc-probe"
    await host.close()


async def test_host_times_out_a_stuck_processor_without_blocking_the_loop() -> None:
    class Stuck(PassthroughProcessor):
        async def process_video_async(self, f):
            time.sleep(1.0)  # noqa: ASYNC251 (synchronous work, as many processors do)
            return f

    host = ProcessorHost(Stuck, name="stuck")
    await host.start()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    with pytest.raises(ProcessorTimeout):
        await host.call(host.instance.process_video_async, frame(), limit_s=0.3)
    task.cancel()
    assert ticks > 10  # the runtime's loop kept running meanwhile
    await host.close()


async def test_load_failure_marks_pool_error() -> None:
    class Broken(PassthroughProcessor):
        async def load_model(self, **kwargs) -> None:
            raise RuntimeError("weights missing")

    pool = ProcessorPool(Broken, 1)
    await pool.start()
    assert pool.state is PoolState.ERROR and "weights missing" in (pool.error or "")
    await pool.close()


async def test_pool_lends_and_replaces_unhealthy_instances() -> None:
    pool = ProcessorPool(PassthroughProcessor, 2)
    assert pool.state is PoolState.LOADING
    await pool.start()
    assert pool.state is PoolState.READY and pool.free == 2
    a, b = pool.acquire(), pool.acquire()
    assert a is not None and b is not None and a.instance is not b.instance and pool.acquire() is None
    pool.release(a)
    pool.release(b, healthy=False)
    for _ in range(100):
        if pool.free == 2:
            break
        await asyncio.sleep(0.05)
    assert pool.free == 2 and b not in [pool.acquire(), pool.acquire()]
    await pool.close()


async def test_callback_processor_semantics() -> None:
    calls: list[str] = []

    async def video(f):
        calls.append("video")
        return None  # pytrickle: None from a handler passes the frame through

    def params(p):  # sync callbacks are accepted too
        calls.append(f"params:{sorted(p)}")

    proc = CallbackProcessor(video_processor=video, param_updater=params)
    f = frame()
    assert await proc.process_video_async(f) is f
    await proc.update_params({"load_model": True, "x": 1})
    assert calls == ["video", "params:['x']"]
    assert await proc.process_audio_async("audio") == ["audio"]
