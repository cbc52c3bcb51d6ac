"""pytrickle's own example processors run unchanged on this runtime, every one of them.

The examples ship inside pytrickle's wheel on PyPI (``pytrickle/examples/``). The test downloads the wheel with
pip into a temporary folder (no dependencies), extracts only the examples and loads each file by path, with
``import pytrickle`` mapped to this runtime's shim: pytrickle itself is neither extracted nor on ``sys.path``,
and nothing of it is committed here. Each example is built as its ``main()`` builds it, served by the
``StreamServer`` it creates, and fed generated media through a real trickle server; its output is decoded and
checked for the example's effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import subprocess
import sys
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp.test_utils import TestServer
from byoc_runtime import trickle
from byoc_runtime.compat import install_pytrickle_alias
from byoc_runtime.media.testsource import BEEP_HZ

from .support import Decoded, RunningWorker, Stream, decode_segments, publish

pytestmark = pytest.mark.trickle

PYTRICKLE_WHEEL = "pytrickle==0.1.6"  # its wheel ships pytrickle/examples/
SMALL = {"width": 128, "height": 96, "max_framerate": 30}


def _pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.fail(f"pip {' '.join(args)} failed (PyPI is needed for this test):\n{done.stderr[-2000:]}")


@pytest.fixture(scope="module")
def examples_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    download = tmp_path_factory.mktemp("pytrickle-wheel")
    _pip("download", "--no-deps", "--only-binary=:all:", "--quiet", "-d", str(download), PYTRICKLE_WHEEL)
    wheel = next(download.glob("pytrickle-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        members = [n for n in archive.namelist() if n.startswith("pytrickle/examples/")]
        archive.extractall(download / "unpacked", members=members)
    return download / "unpacked" / "pytrickle" / "examples"


@pytest.fixture(scope="module")
def cv2_importable(tmp_path_factory: pytest.TempPathFactory) -> None:
    """OpenCV for process_video_example (pinned in requirements-dev.txt, as a user of that example installs it)."""
    importlib.import_module("cv2")


def load_example(examples_dir: Path, name: str) -> ModuleType:
    assert install_pytrickle_alias(force=True)
    spec = importlib.util.spec_from_file_location(f"pytrickle_example_{name}", examples_dir / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import would: its dataclasses look their module up there
    spec.loader.exec_module(module)
    assert sys.modules["pytrickle"].__name__ == "byoc_runtime.compat.pytrickle"  # our shim, not the wheel
    return module


# -- how each example's main() builds its processor --------------------------------------------------------


async def build_passthrough(m: ModuleType) -> Any:
    return m.StreamProcessor.from_handlers(m.PassthroughHandlers(), name="passthrough-example", port=8000)


async def build_grayscale_chipmunk(m: ModuleType) -> Any:
    processor = m.StreamProcessor.from_handlers(
        m.GrayscaleChipmunkHandlers(), name="grayscale-chipmunk-demo", port=8000
    )
    await processor._frame_processor.load_model()
    return processor


async def build_process_video(m: ModuleType) -> Any:
    handlers = m.GreenProcessorHandlers()
    processor = m.StreamProcessor.from_handlers(
        handlers, name="green-processor", port=8000, frame_skip_config=m.FrameSkipConfig()
    )
    handlers.processor = processor
    return processor


async def build_overlay(m: ModuleType) -> Any:
    # main() uses the default 10 s simulated model load; the constructor's own knob makes it 1 s here.
    return m.ModelLoadingOverlayProcessor(model_load_delay=1.0)


# -- what each example must have done to the stream --------------------------------------------------------


@dataclass
class Run:
    out: Decoded
    data: bytes
    stream: Stream


def chroma(image: np.ndarray) -> float:
    return float(np.abs(image[..., 0].astype(int) - image[..., 2].astype(int)).mean())


def colour_bars(images: list[np.ndarray]) -> bool:
    """All the source's colour bars (its white flash frames aside)."""
    return all(chroma(img) > 30 for img in images if img.mean() < 200)


def dominant_hz(out: Decoded) -> float:
    """The strongest frequency over the loud parts of the output audio (the beeps)."""
    samples = np.concatenate([s for _, s in out.audio])
    window = 2048
    peaks = []
    for start in range(0, len(samples) - window, window):
        chunk = samples[start : start + window]
        if np.abs(chunk).max() > 0.1:
            spectrum = np.abs(np.fft.rfft(chunk * np.hanning(window)))
            peaks.append(np.argmax(spectrum) * out.audio_rate / window)
    assert peaks, "no beep in the output audio"
    return float(np.median(peaks))


def audio_seconds(out: Decoded) -> float:
    return sum(len(s) for _, s in out.audio) / out.audio_rate


def check_passthrough(run: Run) -> None:
    assert len(run.out.video) >= 85
    assert colour_bars([img for _, img in run.out.video])  # unchanged
    assert audio_seconds(run.out) > 2.5 and abs(dominant_hz(run.out) - BEEP_HZ) < 50


def check_grayscale_chipmunk(run: Run) -> None:
    assert len(run.out.video) >= 85
    assert max(chroma(img) for _, img in run.out.video) < 4  # grey
    assert audio_seconds(run.out) > 2.5
    # Its resampling stretches the first 1/chipmunk_factor of each audio frame over the whole frame, which
    # lowers the pitch by that factor (1.6), on pytrickle as here.
    assert abs(dominant_hz(run.out) - BEEP_HZ / 1.6) < 60


def check_process_video(run: Run) -> None:
    assert len(run.out.video) >= 190
    frames = np.stack([img for _, img in run.out.video]).astype(int)
    seventh = frames.shape[2] // 7
    left, right = frames[:, :, :seventh].mean(axis=(0, 1, 2)), frames[:, :, -seventh:].mean(axis=(0, 1, 2))
    # Input: grey bar on the left, blue on the right. Flipped and hue-shifted: violet-blue left, greyish right.
    assert left[2] - left[1] > 60 and abs(right[2] - right[1]) < 40, (left, right)
    assert b"status_update" in run.data  # its background task's send_data, every 5 s


def check_overlay(run: Run) -> None:
    dark = [img.mean() < 60 and chroma(img) < 10 for _, img in run.out.video]
    assert len(dark) >= 110
    # processing_delay=2 at stream start: about 2 s of loading overlay, then the input passes through.
    assert 30 <= sum(dark[:75]) and not any(dark[-30:])
    assert colour_bars([img for (_, img), d in zip(run.out.video, dark, strict=True) if not d])


@dataclass(frozen=True)
class Example:
    build: Callable[[ModuleType], Awaitable[Any]]
    check: Callable[[Run], None]
    seconds: float
    params: dict[str, Any]
    needs_cv2: bool = False


EXAMPLES: dict[str, Example] = {
    "passthrough_example": Example(build_passthrough, check_passthrough, 3, {}),
    "grayscale_chipmunk_example": Example(build_grayscale_chipmunk, check_grayscale_chipmunk, 3, {}),
    "process_video_example": Example(build_process_video, check_process_video, 7, {}, needs_cv2=True),
    "overlay_example": Example(build_overlay, check_overlay, 4, {"processing_delay": 2.0}),
}


def test_every_example_of_the_wheel_is_covered(examples_dir: Path) -> None:
    shipped = {p.stem for p in examples_dir.glob("*.py")} - {"__init__"}
    assert shipped == set(EXAMPLES), f"examples in {PYTRICKLE_WHEEL}: {sorted(shipped)}"


async def _read_raw(url: str, into: bytearray, http: aiohttp.ClientSession) -> None:
    with contextlib.suppress(trickle.TrickleError):
        async with trickle.Subscriber(url, session=http) as sub:
            async for segment in sub:
                with contextlib.suppress(trickle.SegmentError):
                    into.extend(await segment.read())


@pytest.mark.parametrize("name", list(EXAMPLES))
async def test_example_streams_on_this_runtime(
    name: str, examples_dir: Path, request: pytest.FixtureRequest, trickle_server: Any, make_segments: Any
) -> None:
    example = EXAMPLES[name]
    if example.needs_cv2:
        request.getfixturevalue("cv2_importable")
    module = load_example(examples_dir, name)
    processor = await example.build(module)
    segments = make_segments(seconds=example.seconds, audio_codec="libopus")
    server = TestServer(processor.server.get_app(), host="127.0.0.1")
    await server.start_server()
    data = bytearray()
    try:
        async with aiohttp.ClientSession() as http:
            rt = RunningWorker(processor.server.worker, str(server.make_url("")).rstrip("/"), http)
            await rt.wait_health("IDLE")
            stream = Stream.create(trickle_server, prefix=name.replace("_", "-"))
            stream.listen()
            raw_data = asyncio.create_task(_read_raw(stream.url("-data"), data, http))
            status, body = await rt.post("/stream/start", json=stream.start_body({**SMALL, **example.params}))
            assert status == 200, body
            await publish(stream.url(), segments)
            await stream.wait_ended()
            await asyncio.sleep(0.5)  # last events and data
            raw_data.cancel()
            await asyncio.gather(raw_data, return_exceptions=True)
            await stream.close()
    finally:
        await server.close()
    assert "stream_stopped" in stream.event_types()
    example.check(Run(decode_segments(stream.output), bytes(data), stream))
