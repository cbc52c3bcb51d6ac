"""The pytrickle shim offers pytrickle v0.1.8's public API, with the behaviour processors rely on.

The expected names and signatures below are written out from pytrickle v0.1.8 (commit 89a992d):
``pytrickle/__init__.py`` (``__all__``) and the submodules processors import. They are not read from a
pytrickle install: this runtime runs processors without one.
"""

from __future__ import annotations

import asyncio
import collections.abc
import dataclasses
import enum
import inspect
import typing
from fractions import Fraction
from types import ModuleType
from typing import Any

import aiohttp
import pytest
import torch
from aiohttp import web
from aiohttp.test_utils import TestServer
from byoc_runtime.compat import install_pytrickle_alias
from byoc_runtime.frames import VideoFrame
from byoc_runtime.processors.base import FrameProcessor as RuntimeFrameProcessor


@pytest.fixture(scope="module")
def pt() -> ModuleType:
    assert install_pytrickle_alias(force=True)
    import pytrickle

    assert pytrickle.__name__ == "byoc_runtime.compat.pytrickle"
    return pytrickle


# pytrickle v0.1.8 pytrickle/__init__.py, __all__ (in upstream's order).
V018_ALL = [
    "TrickleClient",
    "StreamServer",
    "StreamProcessor",
    "VideoProcessingResult",
    "TrickleProtocol",
    "VideoFrame",
    "AudioFrame",
    "VideoOutput",
    "AudioOutput",
    "TricklePublisher",
    "TrickleSubscriber",
    "BaseStreamManager",
    "TrickleStreamManager",
    "StreamHandler",
    "TrickleStreamHandler",
    "FrameBuffer",
    "StreamState",
    "TrickleComponent",
    "ComponentState",
    "RegisterCapability",
    "api",
    "ErrorCallback",
    "FrameProcessor",
    "FPSMeter",
    "FrameSkipConfig",
    "OverlayConfig",
    "OverlayMode",
    "OverlayController",
    "__version__",
]

# What each name is in v0.1.8: ("class", constructor parameters in order), ("enum", members),
# ("dataclass", fields in order), ("module",), ("callable-alias",), ("str",).
V018_KINDS: dict[str, tuple[Any, ...]] = {
    "TrickleClient": (
        "class",
        [
            "protocol",
            "frame_processor",
            "control_handler",
            "send_data_interval",
            "error_callback",
            "max_queue_size",
            "frame_skip_config",
            "overlay_config",
        ],
    ),
    "StreamServer": (
        "class",
        [
            "frame_processor",
            "port",
            "pipeline",
            "capability_name",
            "version",
            "custom_routes",
            "middleware",
            "cors_config",
            "static_routes",
            "app_context",
            "health_check_interval",
            "enable_default_routes",
            "route_prefix",
            "host",
            "on_startup",
            "on_shutdown",
            "publisher_timeout",
            "subscriber_timeout",
            "app_kwargs",
            "frame_skip_config",
            "overlay_config",
        ],
    ),
    "StreamProcessor": (
        "class",
        [
            "video_processor",
            "audio_processor",
            "model_loader",
            "param_updater",
            "on_stream_start",
            "on_stream_stop",
            "send_data_interval",
            "name",
            "port",
            "frame_skip_config",
            "overlay_config",
            "validate_signature",
            "**server_kwargs",
        ],
    ),
    "VideoProcessingResult": ("enum", ["WITHHELD"]),
    "TrickleProtocol": (
        "class",
        [
            "subscribe_url",
            "publish_url",
            "control_url",
            "events_url",
            "data_url",
            "width",
            "height",
            "max_framerate",
            "heartbeat_interval",
            "publisher_timeout",
            "subscriber_timeout",
            "error_callback",
            "detect_out_resolution",
        ],
    ),
    "VideoFrame": ("class", ["tensor", "timestamp", "time_base", "log_timestamps"]),
    "AudioFrame": ("class", ["frame"]),
    "VideoOutput": ("class", ["frame", "request_id"]),
    "AudioOutput": ("class", ["frames", "request_id"]),
    "TricklePublisher": ("class", ["url", "mime_type", "error_callback", "component_name"]),
    "TrickleSubscriber": (
        "class",
        ["url", "start_seq", "max_retries", "connect_timeout_seconds", "error_callback", "component_name"],
    ),
    "BaseStreamManager": ("class", ["stream_state"]),
    "TrickleStreamManager": ("class", ["app_context", "stream_state"]),
    "StreamHandler": ("class", ["width", "height", "**kwargs"]),
    "TrickleStreamHandler": (
        "class",
        [
            "subscribe_url",
            "publish_url",
            "control_url",
            "events_url",
            "data_url",
            "width",
            "height",
            "error_callback",
            "app_context",
            "**kwargs",
        ],
    ),
    "FrameBuffer": ("class", ["max_frames"]),
    "StreamState": ("class", []),
    "TrickleComponent": ("class", ["error_callback", "component_name"]),
    "ComponentState": ("enum", ["INIT", "STARTING", "RUNNING", "STOPPING", "STOPPED", "ERROR", "SHUTDOWN"]),
    "RegisterCapability": ("class", ["logger"]),
    "api": ("module",),
    "ErrorCallback": ("callable-alias",),
    "FrameProcessor": ("class", ["error_callback", "**init_kwargs"]),
    "FPSMeter": ("class", ["window_seconds", "max_samples"]),
    "FrameSkipConfig": ("dataclass", ["target_fps", "adaptation_cooldown", "max_queue_size", "max_cleanup_frames"]),
    "OverlayConfig": (
        "dataclass",
        ["mode", "message", "progress", "enabled", "auto_timeout_seconds", "frame_count_to_disable"],
    ),
    "OverlayMode": ("enum", ["PROGRESSBAR", "PASSTHROUGH"]),
    "OverlayController": ("class", ["overlay_config"]),
    "__version__": ("str",),
}

# Submodules processors import and the names they take from them (v0.1.8 files of the same name).
V018_SUBMODULES: dict[str, list[str]] = {
    "frames": ["VideoFrame", "AudioFrame", "VideoOutput", "AudioOutput", "FrameBuffer", "InputFrame", "OutputFrame"],
    "frame_processor": ["FrameProcessor"],
    "stream_processor": ["StreamProcessor", "VideoProcessingResult"],
    "server": ["StreamServer", "RouteConfig"],
    "decorators": [
        "video_handler",
        "audio_handler",
        "model_loader",
        "param_updater",
        "on_stream_start",
        "on_stream_stop",
    ],
    "frame_skipper": ["FrameSkipConfig", "AdaptiveFrameSkipper", "FrameProcessingResult"],
    "frame_overlay": ["OverlayMode", "OverlayConfig", "OverlayController", "build_frame_overlay"],
    "fps_meter": ["FPSMeter"],
    "state": ["StreamState", "PipelineState"],
    "base": ["TrickleComponent", "ComponentState", "ErrorCallback"],
    "client": ["TrickleClient"],
    "protocol": ["TrickleProtocol"],
    "publisher": ["TricklePublisher"],
    "subscriber": ["TrickleSubscriber"],
    "manager": ["StreamHandler", "BaseStreamManager", "TrickleStreamManager"],
    "stream_handler": ["TrickleStreamHandler"],
    "utils.register": ["RegisterCapability"],
    "api": ["StreamStartRequest", "StreamParamsUpdateRequest"],
    "version": ["__version__"],
}

# Methods processors call, and whether upstream's is a coroutine function.
V018_METHODS: dict[str, dict[str, bool]] = {
    "StreamProcessor": {
        "send_data": True,
        "send_monitoring_event": True,
        "send_input_frame": True,
        "set_loading_overlay": False,
        "run_forever": True,
        "run": False,
        "from_handlers": False,
    },
    "StreamServer": {"run_forever": True, "get_app": False},
    "FrameProcessor": {
        "load_model": True,
        "process_video_async": True,
        "process_audio_async": True,
        "update_params": True,
        "on_stream_start": True,
        "on_stream_stop": True,
        "ensure_model_loaded": True,
        "attach_state": False,
    },
    "TrickleClient": {"start": True, "stop": True, "publish_data": True, "set_target_fps": False},
    "TrickleProtocol": {"emit_monitoring_event": True, "publish_data": True, "update_params": True},
    "TricklePublisher": {"start": True, "next": True, "close": True},
    "TrickleSubscriber": {"start": True, "next": True, "close": True},
    "OverlayController": {
        "reset": False,
        "update_and_apply": False,
        "apply_overlay_config": False,
        "set_manual_loading": False,
        "should_skip_processing": False,
    },
    "FPSMeter": {
        "record_ingress_video_frame": False,
        "record_ingress_audio_frame": False,
        "record_egress_video_frame": False,
        "record_egress_audio_frame": False,
        "get_ingress_video_fps": False,
        "get_fps_stats": False,
        "reset": False,
    },
    "StreamState": {
        "set_startup_complete": False,
        "set_error": False,
        "clear_error": False,
        "get_pipeline_state": False,
    },
    "RegisterCapability": {"register_capability": True, "register": True},
    "BaseStreamManager": {"create_stream": True, "stop_stream": True, "list_streams": True, "cleanup_all": True},
}


def _parameters(cls: type) -> list[str]:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    names = []
    for p in params:
        if p.kind is p.KEYWORD_ONLY:
            continue  # our own additions are keyword-only
        names.append(("**" if p.kind is p.VAR_KEYWORD else "*" if p.kind is p.VAR_POSITIONAL else "") + p.name)
    return names


def test_every_public_name_of_v018_with_its_kind(pt: ModuleType) -> None:
    assert set(V018_KINDS) == set(V018_ALL)
    assert set(pt.__all__) >= set(V018_ALL)
    for name in V018_ALL:
        obj = getattr(pt, name)
        kind = V018_KINDS[name]
        if kind[0] == "class":
            assert inspect.isclass(obj), name
            assert _parameters(obj) == kind[1], name
        elif kind[0] == "enum":
            assert issubclass(obj, enum.Enum) and [m.name for m in obj] == kind[1], name
        elif kind[0] == "dataclass":
            assert dataclasses.is_dataclass(obj) and [f.name for f in dataclasses.fields(obj)] == kind[1], name
            obj()  # every field has a default
        elif kind[0] == "module":
            assert isinstance(obj, ModuleType), name
        elif kind[0] == "callable-alias":
            assert typing.get_origin(obj) is collections.abc.Callable, name
        else:
            assert isinstance(obj, str) and obj.startswith("0.1.8"), name


def test_submodules_processors_import(pt: ModuleType) -> None:
    import importlib

    for module_name, names in V018_SUBMODULES.items():
        module = importlib.import_module(f"pytrickle.{module_name}")
        assert module.__name__ == f"byoc_runtime.compat.pytrickle.{module_name}"
        for name in names:
            assert hasattr(module, name), f"pytrickle.{module_name}.{name}"
    # the same objects whichever way they are reached
    from pytrickle.frame_overlay import OverlayConfig
    from pytrickle.frame_skipper import FrameSkipConfig

    assert OverlayConfig is pt.OverlayConfig and FrameSkipConfig is pt.FrameSkipConfig


def test_methods_processors_call(pt: ModuleType) -> None:
    for class_name, methods in V018_METHODS.items():
        cls = getattr(pt, class_name)
        for method, is_async in methods.items():
            fn = getattr(cls, method, None)
            assert callable(fn), f"{class_name}.{method}"
            assert inspect.iscoroutinefunction(fn) == is_async, f"{class_name}.{method}"
    kwargs = inspect.signature(pt.StreamProcessor.from_handlers).parameters
    for name in ("send_data_interval", "name", "port", "frame_skip_config", "overlay_config", "validate_signature"):
        assert kwargs[name].kind is inspect.Parameter.KEYWORD_ONLY
    assert inspect.signature(pt.StreamProcessor.send_monitoring_event).parameters["event_type"].default == (
        "custom_monitoring_event"
    )


# -- behaviour ------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from byoc_runtime.compat.pytrickle import fps_meter, frame_overlay, frame_skipper

    fake = Clock()
    for module in (fps_meter, frame_skipper, frame_overlay):
        monkeypatch.setattr(module, "time", fake)
    return fake


def _frame(t: int = 0, shape: tuple[int, ...] = (1, 24, 32, 3), value: float = 0.5) -> VideoFrame:
    return VideoFrame(torch.full(shape, value), t, Fraction(1, 30))


def test_fps_meter_counts_over_its_window(pt: ModuleType, clock: Clock) -> None:
    meter = pt.FPSMeter(window_seconds=2.0)
    for _ in range(61):
        meter.record_ingress_video_frame()
        clock.now += 1 / 30
    assert meter.get_ingress_video_fps() == pytest.approx(30, rel=0.05)
    assert meter.get_fps_stats()["egress_video_fps"] == 0.0
    clock.now += 5
    assert meter.get_ingress_video_fps() == 0.0


def test_frame_skipper_keeps_one_in_ingress_over_target(pt: ModuleType, clock: Clock) -> None:
    from pytrickle.frame_skipper import AdaptiveFrameSkipper, FrameProcessingResult

    meter = pt.FPSMeter()
    auto = AdaptiveFrameSkipper(pt.FrameSkipConfig(), meter)
    capped = AdaptiveFrameSkipper(pt.FrameSkipConfig(target_fps=10), meter)
    kept = {id(auto): 0, id(capped): 0}
    for i in range(90):
        clock.now += 1 / 30
        meter.record_ingress_video_frame()
        for skipper in (auto, capped):
            if skipper.admit(i) is not FrameProcessingResult.SKIPPED:
                kept[id(skipper)] += 1
    assert kept[id(auto)] == 90  # auto-detect: the target is the ingress rate
    assert capped.skip_interval == 3 and 30 <= kept[id(capped)] <= 40
    capped.set_target_fps(0)  # refused
    assert capped.config.target_fps == 10
    capped.set_target_fps(None)
    assert capped.skip_interval == 1


async def test_frame_skipper_trims_a_queue_backlog_and_keeps_the_sentinel(pt: ModuleType) -> None:
    from pytrickle.frame_skipper import AdaptiveFrameSkipper

    skipper = AdaptiveFrameSkipper(pt.FrameSkipConfig(max_queue_size=2), pt.FPSMeter())
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in (*range(5), None):
        queue.put_nowait(item)
    assert await skipper.process_video_queue(queue) == 4  # 0..3 dropped, the newest frame kept
    assert await skipper.process_video_queue(queue) is None
    with pytest.raises(TimeoutError):
        await skipper.process_video_queue(queue, timeout=0.01)


def _is_overlay(frame: VideoFrame) -> bool:
    return abs(float(frame.tensor[0, 0, 0, 0]) - 30 / 255) < 1e-3  # the overlay's dark background


def test_overlay_controller_follows_pytrickle_rules(pt: ModuleType, clock: Clock) -> None:
    controller = pt.OverlayController(pt.OverlayConfig(auto_timeout_seconds=1.0, frame_count_to_disable=2))
    original, processed = _frame(), _frame(value=0.9)
    assert controller.update_and_apply(original, processed) is processed
    assert controller.update_and_apply(original, None) is original  # withheld, before the timeout: input frame
    clock.now += 1.1
    overlay = controller.update_and_apply(original, None)
    assert _is_overlay(overlay) and overlay.tensor.shape == original.tensor.shape
    assert overlay.timestamp == original.timestamp and overlay.time_base == original.time_base
    assert _is_overlay(controller.update_and_apply(original, processed))  # 1 of 2 frames needed to switch off
    assert controller.update_and_apply(original, processed) is processed

    assert not controller.should_skip_processing()
    controller.set_manual_loading(True)
    assert controller.should_skip_processing()
    assert _is_overlay(controller.update_and_apply(original, processed))  # manual: stays on
    controller.set_manual_loading(False)
    assert controller.update_and_apply(original, processed) is processed

    controller.apply_overlay_config(pt.OverlayConfig(mode=pt.OverlayMode.PASSTHROUGH))
    controller.set_manual_loading(True)
    assert not controller.should_skip_processing()
    clock.now += 10
    assert controller.update_and_apply(original, None) is None  # passthrough mode: withheld means not sent


def test_overlay_frame_keeps_layout_size_and_renders_the_message(pt: ModuleType) -> None:
    from pytrickle.frame_overlay import build_frame_overlay

    for shape in ((1, 96, 128, 3), (3, 96, 128), (1, 3, 96, 128), (96, 128, 3)):
        out = build_frame_overlay(_frame(shape=shape), message="Loading...", frame_counter=3, progress=0.5)
        assert out.tensor.shape == shape and out.tensor.dtype == torch.float32
    image = build_frame_overlay(_frame(shape=(1, 240, 320, 3)), "Loading...").tensor[0]
    text = (image * 255).round() == 200
    assert text.all(dim=-1).sum() > 100  # the message's pixels
    assert not build_frame_overlay(_frame(shape=(1, 240, 320, 3)), "").tensor.eq(200 / 255).all(dim=-1).any()


class Recorder(RuntimeFrameProcessor):
    def __init__(self) -> None:
        super().__init__()
        self.frames = 0
        self.params: list[dict[str, Any]] = []

    async def process_video_async(self, frame: VideoFrame) -> VideoFrame | None:
        self.frames += 1
        return frame

    async def update_params(self, params: dict[str, Any]) -> None:
        self.params.append(params)


async def test_frame_gate_sinks_manual_overlay_and_skipping(pt: ModuleType, clock: Clock) -> None:
    from pytrickle.client import FrameGate

    inner = Recorder()
    gate = FrameGate(inner, pt.FrameSkipConfig(target_fps=10), pt.OverlayConfig())
    assert not gate.set_manual_loading(True)  # no stream yet
    assert not await gate.send_monitoring_event({"type": "x"})
    assert not await gate.send_data("x")

    sent: list[Any] = []
    events: list[tuple[dict[str, Any], str]] = []
    gate.attach_data_sink(sent.append)
    gate.attach_event_sink(lambda event, queue: events.append((event, queue)))
    await gate.on_stream_start({})
    assert await gate.send_data("item") and await inner.send_data({"k": 1})  # the inner processor's sink too
    assert await gate.send_monitoring_event({"type": "custom"})
    assert await gate.send_monitoring_event({"type": "other"}, "my_queue")
    assert sent == ["item", {"k": 1}]
    assert events == [({"type": "custom"}, "custom_monitoring_event"), ({"type": "other"}, "my_queue")]

    out = []
    for i in range(60):
        clock.now += 1 / 30
        out.append(await gate.process_video_async(_frame(i)))
    # 30 fps in, target 10: all frames for the first 0.5 s (adaptation cooldown), then one in three
    assert 28 <= inner.frames <= 32
    assert sum(o is not None for o in out) == inner.frames

    assert gate.set_manual_loading(True)
    before = inner.frames
    overlay = await gate.process_video_async(_frame(61))
    assert _is_overlay(overlay) and inner.frames == before  # the processor is not called
    await gate.update_params({"a": 1})
    assert inner.params == [{"a": 1}]
    await gate.on_stream_stop()
    assert not gate.set_manual_loading(False)


def test_stream_processor_takes_upstream_arguments(pt: ModuleType) -> None:
    def not_async(frame: VideoFrame) -> VideoFrame:
        return frame

    with pytest.raises(ValueError, match="video_processor must be an async function"):
        pt.StreamProcessor(video_processor=not_async)

    async def video(frame: VideoFrame) -> VideoFrame:
        return frame

    skip, overlay = pt.FrameSkipConfig(target_fps=12), pt.OverlayConfig(mode=pt.OverlayMode.PASSTHROUGH)
    processor = pt.StreamProcessor(
        video_processor=video, frame_skip_config=skip, overlay_config=overlay, route_prefix="/", host="127.0.0.1"
    )
    gate = processor.server.gate
    assert gate.frame_skipper.config is skip and gate.loading_controller.overlay_config is overlay
    assert processor.server.host == "127.0.0.1" and not processor.set_loading_overlay(True)


async def test_stream_server_adds_custom_routes_context_and_hooks(pt: ModuleType) -> None:
    started: list[bool] = []

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": request.app["greeting"]})

    async def on_startup(_: web.Application) -> None:
        started.append(True)

    server = pt.StreamServer(
        Recorder(),
        custom_routes=[{"method": "GET", "path": "/hello", "handler": hello}],
        app_context={"greeting": "world"},
        on_startup=[on_startup],
    )
    test_server = TestServer(server.get_app(), host="127.0.0.1")
    await test_server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(test_server.make_url("/hello")) as resp:
                assert await resp.json() == {"hello": "world"}
            async with http.get(test_server.make_url("/health")) as resp:
                assert resp.status == 200
    finally:
        await test_server.close()
    assert started == [True]


async def test_register_capability(pt: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str | None, dict[str, Any]]] = []
    answers = [503, 200, 400]

    async def register(request: web.Request) -> web.Response:
        seen.append((request.headers.get("Authorization"), await request.json()))
        return web.Response(status=answers.pop(0))

    app = web.Application()
    app.router.add_post("/capability/register", register)
    orch = TestServer(app, host="127.0.0.1")
    await orch.start_server()
    for key in ("CAPABILITY_NAME", "CAPABILITY_DESCRIPTION", "CAPABILITY_CAPACITY", "ORCH_URL", "ORCH_SECRET"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CAPABILITY_URL", "http://127.0.0.1:9876")
    try:
        assert await pt.RegisterCapability.register() is False  # no orchestrator configured
        url = str(orch.make_url("")).rstrip("/")
        result = await pt.RegisterCapability().register_capability(
            orch_url=url, orch_secret="s3cret", capability_name="cap", capability_capacity=2, delay=0.01
        )
        assert result and result.port == 9876  # 503 retried, then 200
        assert seen[1] == (
            "s3cret",
            {
                "url": "http://127.0.0.1:9876",
                "name": "cap",
                "description": "PyTrickle video processing worker",
                "capacity": 2,
                "price_per_unit": 0,
                "price_scaling": 1,
            },
        )
        monkeypatch.setenv("ORCH_URL", url)
        monkeypatch.setenv("ORCH_SECRET", "wrong")
        assert await pt.RegisterCapability.register(delay=0.01) is False  # 400: wrong secret, not retried
        assert len(seen) == 3
    finally:
        await orch.close()


async def test_stream_manager_tracks_handlers_and_state(pt: ModuleType) -> None:
    class Handler(pt.StreamHandler):
        def __init__(self, ok: bool) -> None:
            super().__init__(width=64, height=48)
            self.ok, self.live = ok, False

        @property
        def running(self) -> bool:
            return self.live

        async def start(self) -> bool:
            self.live = self.ok
            return self.ok

        async def stop(self, *, called_by_manager: bool = False) -> bool:
            self.live = False
            return True

    state = pt.StreamState()
    state.set_startup_complete()
    manager = pt.TrickleStreamManager(app_context={"stream_state": state})

    async def factory(request_id: str, ok: bool = True, app_context: Any = None) -> Handler:
        assert app_context is manager.app_context
        return Handler(ok)

    assert not await manager.create_stream("a")  # no factory yet
    manager.set_stream_handler_factory(factory)
    assert await manager.create_stream("a") and not await manager.create_stream("a")
    assert not await manager.create_stream("b", ok=False)
    assert state.get_pipeline_state()["status"] == "OK"
    assert await manager.list_streams() == {"a": {"request_id": "a", "running": True, "width": 64, "height": 48}}
    assert manager.handlers["a"].update_resolution(32, 32) and not manager.handlers["a"].update_resolution(32, 32)
    assert await manager.stop_stream("a") and not await manager.stop_stream("a")
    assert state.get_pipeline_state()["status"] == "IDLE"
    state.set_error("boom")
    assert state.get_pipeline_state()["status"] == "ERROR"
    state.clear_error()
    assert state.get_pipeline_state()["status"] == "LOADING"  # as upstream: back to LOADING after an error


def test_frame_buffer_and_component_state(pt: ModuleType) -> None:
    buffer = pt.FrameBuffer(max_frames=2)
    for i in range(3):
        buffer.add_frame(_frame(i))
    assert buffer.get_stats() == {"current_frames": 2, "max_frames": 2, "total_received": 3, "total_discarded": 1}
    assert buffer.get_frame().timestamp == 1 and [f.timestamp for f in buffer.get_all_frames()] == [2]
    component = pt.TrickleComponent(component_name="c")
    assert component.get_component_health()["state"] == "INIT"
