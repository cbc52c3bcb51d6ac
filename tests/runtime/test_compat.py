"""Processors written for pytrickle run unchanged, without pytrickle installed.

``guide_processor.py.txt`` is the Livepeer BYOC guide's example processor verbatim (its undefined
``load_my_model`` filled in with an inverting "model"); ``handler_processor.py.txt`` uses pytrickle's
decorator API.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import socket
from fractions import Fraction
from pathlib import Path

import aiohttp
import pytest
import torch
from byoc_runtime.compat import install_pytrickle_alias
from byoc_runtime.frames import VideoFrame
from byoc_runtime.processors.host import ProcessorHost
from byoc_runtime.processors.loader import resolve_processor

HERE = Path(__file__).parent

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pytrickle") is not None and not install_pytrickle_alias(),
    reason="real pytrickle installed; these tests cover running without it",
)


@pytest.fixture
def processor_file(tmp_path: Path):
    def copy(name: str) -> Path:
        target = tmp_path / name.removesuffix(".txt")
        shutil.copy(HERE / name, target)
        return target

    return copy


def test_alias_maps_pytrickle_modules() -> None:
    assert install_pytrickle_alias()
    import pytrickle
    import pytrickle.frames
    from byoc_runtime import frames
    from byoc_runtime.processors.base import FrameProcessor as Ours
    from pytrickle.decorators import video_handler
    from pytrickle.frame_processor import FrameProcessor

    assert pytrickle.VideoFrame is frames.VideoFrame and pytrickle.frames.AudioFrame is frames.AudioFrame
    assert FrameProcessor is Ours and callable(video_handler)
    assert pytrickle.StreamServer.__module__.startswith("byoc_runtime.compat")


async def test_guide_processor_runs_on_our_host(processor_file) -> None:
    factory = resolve_processor(f"{processor_file('guide_processor.py.txt')}:MyAIProcessor")
    host = ProcessorHost(factory, name="guide")
    await host.start()
    assert host.error is None
    frame = VideoFrame(torch.full((1, 4, 4, 3), 0.25), 1, Fraction(1, 30))
    out = await host.call(host.instance.process_video_async, frame)
    assert torch.allclose(out.tensor, torch.full((1, 4, 4, 3), 0.75)) and out.timestamp == 1
    assert await host.call(host.instance.update_params, {"x": 1}) is None  # a sync update_params is fine
    await host.close()


async def test_decorated_handlers_load_by_class_and_by_factory(processor_file) -> None:
    path = processor_file("handler_processor.py.txt")
    for spec in (f"{path}:GrayHandlers", f"{path}:build"):
        factory = resolve_processor(spec)
        host = ProcessorHost(factory, name="handlers")
        await host.start()
        instance = host.instance
        instance = getattr(instance, "_frame_processor", instance)  # build() returns a StreamProcessor
        host.instance = instance
        out = await host.call(instance.process_video_async, VideoFrame(torch.rand(1, 4, 4, 3), 0, Fraction(1, 30)))
        assert torch.allclose(out.tensor[..., 0], out.tensor[..., 2])
        await host.call(instance.update_params, {"grayscale": False})
        frame = VideoFrame(torch.rand(1, 4, 4, 3), 0, Fraction(1, 30))
        assert (await host.call(instance.process_video_async, frame)) is frame
        await host.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_stream_server_shim_serves_a_guide_processor(processor_file) -> None:
    path = processor_file("guide_processor.py.txt")
    spec = importlib.util.spec_from_file_location("guide_module_for_shim", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    processor = module.MyAIProcessor()
    await processor.start()  # as the guide's main() does
    port = _free_port()
    server = module.StreamServer(frame_processor=processor, port=port, host="127.0.0.1", capability_name="cap")
    runner = await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                async with http.get(f"{base}/health") as resp:
                    if (await resp.json())["status"] == "IDLE":
                        break
                await asyncio.sleep(0.05)
            async with http.get(f"{base}/version") as resp:
                assert (await resp.json())["model_id"] == "cap"
            async with http.post(f"{base}/api/stream/start", json={"gateway_request_id": "shim"}) as resp:
                assert resp.status == 200
            async with http.post(f"{base}/api/stream/start", json={"gateway_request_id": "other"}) as resp:
                assert resp.status == 503  # one instance: one stream, as in pytrickle
    finally:
        await runner.cleanup()
