"""The test gateway (byoc_testenv.gateway) against test orchestrators, real trickle servers and workers: what
go-livepeer's gateway does for a BYOC live stream (byoc/stream_gateway.go, byoc/trickle.go), watchdogs included."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from byoc_testenv.gateway import (
    CANCELLED,
    EVENTS_TIMEOUT,
    OUTPUT_ENDED,
    OUTPUT_TIMEOUT,
    NoOrchestrators,
    StreamEnd,
)
from byoc_testenv.orchestrator import TestOrchestrator
from byoc_testenv.orchestrator.faults import Fault
from byoc_testenv.polling import eventually

from tests.runtime.support import running_worker

from .conftest import CAPABILITY
from .scripted_worker import ScriptedWorker
from .support import ended

pytestmark = pytest.mark.trickle

KEEPALIVE = {"keep": "alive"}
SMALL = {"width": 128, "height": 96, "max_framerate": 15}


def stop_bodies(worker: ScriptedWorker) -> list[bytes]:
    return [call.body for call in worker.calls_to("/stream/stop")]


def token_later(orch: TestOrchestrator) -> None:
    """Make ``orch`` answer ``/process/token`` late, so a gateway lists it after the others."""
    orch.faults.fault = Fault("delay", delay=0.5, paths=("/process/token",))


async def test_a_stream_through_a_real_worker(make_orch, make_gateway, segments):
    async with running_worker("passthrough", heartbeat_interval=0.5) as worker:
        orch = await make_orch(worker.base_url)
        gateway = await make_gateway([orch], max_event_gap=2.0, event_check_interval=0.25)
        stream = await gateway.start_stream(CAPABILITY, params=SMALL, input_segments=segments)
        await eventually(lambda: stream.output_segments >= 3, 60, "processed output segments")
        assert stream.orchestrator == orch.url and stream.end is None  # heartbeats kept it past the event gap
        assert any(e.get("type") == "heartbeat" for e in stream.events), stream.events
        reply = await stream.update({"max_framerate": 10})
        assert reply.status == 200, reply

        def last_params() -> Any:
            status = stream.record.status or {}
            return (status.get("inference_status") or {}).get("last_params", {}).get("max_framerate") == 10

        await eventually(last_params, 10, "the worker's status event with the new params")
        assert (await stream.stop()) is not None
        assert (await ended(stream, 30)).kind == "stopped"
        status = await worker.get("/stream/status")
        assert status[1]["sessions"] == [], status


async def test_no_events_ends_the_stream(make_worker, make_orch, make_gateway):
    worker = await make_worker(events_every=None)
    gateway = await make_gateway([await make_orch(worker.url)], max_event_gap=1.0, event_check_interval=0.25)
    began = time.monotonic()
    stream = await gateway.start_stream(CAPABILITY, video_ingress=False, video_egress=False)
    assert await ended(stream, 20) == StreamEnd("exhausted", EVENTS_TIMEOUT)  # its only orchestrator
    assert time.monotonic() - began >= 1.0
    assert stop_bodies(worker) == [EVENTS_TIMEOUT.encode()]  # stopped at the orchestrator with the reason


async def test_no_output_while_input_flows_ends_the_stream(make_worker, make_orch, make_gateway, segments):
    worker = await make_worker(events_every=0.2)  # alive, but never any output
    gateway = await make_gateway([await make_orch(worker.url)], output_segment_timeout=2.0)
    began = time.monotonic()
    stream = await gateway.start_stream(CAPABILITY, input_segments=segments)
    assert await ended(stream, 20) == StreamEnd("exhausted", OUTPUT_TIMEOUT)
    assert time.monotonic() - began >= 2.0 and stream.record.last_input is not None
    assert stop_bodies(worker) == [OUTPUT_TIMEOUT.encode()]


async def test_no_output_without_input_is_no_timeout(make_worker, make_orch, make_gateway):
    worker = await make_worker(events_every=0.2)
    gateway = await make_gateway([await make_orch(worker.url)], output_segment_timeout=0.5, keepalive_interval=0.5)
    stream = await gateway.start_stream(CAPABILITY)  # input and output on, but no input comes
    running = await eventually(lambda: worker.streams.get(stream.stream_id), 10, "the worker's stream")
    await eventually(lambda: len(running.control) >= 4, 10, "four keepalives: four output timeouts")
    assert stream.end is None
    await stream.stop()
    # Whatever ends the session first names it: here the output the orchestrator closed on the stop, as upstream
    # (its second stop carries "trickle subscribe stopping, stream not found ...").
    assert stream.end == StreamEnd("stopped", OUTPUT_ENDED)


async def test_keepalive_every_interval(make_worker, make_orch, make_gateway):
    worker = await make_worker(events_every=0.2)
    gateway = await make_gateway([await make_orch(worker.url)], keepalive_interval=0.5)
    stream = await gateway.start_stream(CAPABILITY, video_ingress=False, video_egress=False)
    running = await eventually(lambda: worker.streams.get(stream.stream_id), 10, "the worker's stream")
    await eventually(lambda: len(running.control) >= 3, 10, "three control messages")
    started = worker.calls_to("/stream/start")[0].at
    assert [c.message for c in running.control] == [KEEPALIVE] * len(running.control)
    for k, control in enumerate(running.control[:3], start=1):
        assert control.at - started >= 0.9 * k * 0.5  # a ticker, never early (only late on a busy machine)


async def test_update_is_replayed_on_the_next_orchestrator(make_worker, make_orch, make_gateway):
    first_worker = await make_worker(events_every=0.2, output_every=0.3)
    second_worker = await make_worker(events_every=0.2, output_every=0.3)
    first, second = await make_orch(first_worker.url), await make_orch(second_worker.url)
    token_later(second)
    gateway = await make_gateway([first, second])
    stream = await gateway.start_stream(CAPABILITY, params={"prompt": "a"}, video_ingress=False)
    second.faults.fault = Fault()
    await eventually(lambda: stream.output_segments > 0, 10, "output from the first orchestrator")
    assert stream.orchestrator == first.url

    reply = await stream.update({"prompt": "b"})
    assert reply.status == 200
    (params,) = first_worker.calls_to("/stream/params")
    assert params.json() == {"prompt": "b"} and params.headers["X-Stream-Id"] == stream.stream_id

    # The first orchestrator drops the stream without telling its worker (upstream: the balance ran out).
    async with aiohttp.ClientSession() as http:
        async with http.post(first.url + "/_test/byoc/stream/remove", json={"stream_id": stream.stream_id}) as r:
            assert (await r.json()) == {"removed": True}
    await eventually(lambda: stream.orchestrator == second.url, 15, "the swap to the second orchestrator")
    running = await eventually(lambda: second_worker.streams.get(stream.stream_id), 10, "the second worker's stream")
    assert running.start["params"] == {"prompt": "a"}  # the start body is the original one ...
    replayed = await eventually(lambda: [c.message for c in running.control if c.message != KEEPALIVE], 10, "update")
    assert replayed[0] == {"prompt": "b"}  # ... and the last update comes first on the control channel
    assert stop_bodies(first_worker)[0].startswith(OUTPUT_ENDED.encode())  # the gateway told the first worker
    assert [a.orchestrator for a in stream.attempts] == [first.url, second.url]


async def test_output_eos_swaps_orchestrator(make_worker, make_orch, make_gateway):
    closing = await make_worker(events_every=0.2, output_every=0.2, close_output_after=1.0)
    healthy = await make_worker(events_every=0.2, output_every=0.2)
    first, second = await make_orch(closing.url), await make_orch(healthy.url)
    token_later(second)
    gateway = await make_gateway([first, second])
    stream = await gateway.start_stream(CAPABILITY, video_ingress=False)
    await eventually(lambda: stream.orchestrator == second.url, 15, "the swap after the output ended")
    before = stream.output_segments
    await eventually(lambda: stream.output_segments > before, 10, "output from the second orchestrator")
    assert stream.attempts[0].end_reason == OUTPUT_ENDED
    assert stop_bodies(closing) == [OUTPUT_ENDED.encode()]
    assert stream.end is None


async def test_worker_error_swaps_orchestrator(make_worker, make_orch, make_gateway):
    refusing = await make_worker(start_status=503)
    healthy = await make_worker(events_every=0.2, output_every=0.2)
    first, second = await make_orch(refusing.url), await make_orch(healthy.url)
    token_later(second)
    gateway = await make_gateway([first, second])
    stream = await gateway.start_stream(CAPABILITY, video_ingress=False)
    await eventually(lambda: stream.output_segments > 0, 15, "output from the second orchestrator")
    refused = stream.attempts[0]
    assert (refused.orchestrator, refused.status, refused.end_reason) == (first.url, 503, OUTPUT_ENDED)
    assert b"scripted refusal" in refused.body  # passed through by the orchestrator, ignored by the gateway
    assert stream.orchestrator == second.url


async def test_start_reply_without_channels_ends_the_stream(make_worker, make_orch, make_gateway):
    worker = await make_worker()
    orchs = [await make_orch(worker.url) for _ in range(2)]
    for orch in orchs:
        orch.faults.fault = Fault("status", status=400, body="No capacity available for capability\n",
                                  paths=("/ai/stream/start",))  # fmt: skip
    gateway = await make_gateway(orchs)
    stream = await gateway.start_stream(CAPABILITY)
    end = await ended(stream, 20)
    assert end.kind == "invalid_urls" and len(stream.attempts) == 1  # no swap (startStreamProcessing failed)


@pytest.mark.parametrize(("window", "kind", "starts"), [(60.0, "swap_limit", 5), (0.0, "exhausted", 6)])
async def test_swap_limit(make_worker, make_orch, make_gateway, window: float, kind: str, starts: int):
    worker = await make_worker(start_status=500)
    orchs = [await make_orch(worker.url) for _ in range(6)]
    gateway = await make_gateway(orchs, swap_window=window)
    stream = await gateway.start_stream(CAPABILITY, video_ingress=False)
    assert (await ended(stream, 60)).kind == kind
    # the first end is not a swap; after 3 swaps the 4th within the window ends the stream: 5 orchestrators used
    assert len(stream.attempts) == len(worker.calls_to("/stream/start")) == starts


async def test_stop_reaches_the_worker_three_times(make_worker, make_orch, make_gateway):
    worker = await make_worker(events_every=0.2)
    gateway = await make_gateway([await make_orch(worker.url)])
    stream = await gateway.start_stream(CAPABILITY, video_ingress=False, video_egress=False)
    await eventually(lambda: stream.events, 10, "an event")
    reply = await stream.stop(b"bye")
    assert reply is not None and reply.status == 200
    bodies = stop_bodies(worker)
    assert bodies[0] == b"bye" and sorted(bodies[1:]) == sorted([CANCELLED.encode(), b"stream ended"]), bodies
    assert stream.end == StreamEnd("stopped", CANCELLED)


async def test_data_lines(make_worker, make_orch, make_gateway):
    worker = await make_worker(events_every=0.2, data_lines=("first", '{"n": 2}'))
    gateway = await make_gateway([await make_orch(worker.url)])
    stream = await gateway.start_stream(CAPABILITY, video_ingress=False, video_egress=False, data_output=True)
    lines: list[str] = []
    async for line in stream.read_data():
        lines.append(line)
        if len(lines) == 2:
            break
    assert lines == ["first", '{"n": 2}'] == stream.data_lines
    assert "data_url" in worker.streams[stream.stream_id].start


async def test_no_orchestrator_with_capacity(make_worker, make_orch, make_gateway):
    worker = await make_worker()
    gateway = await make_gateway([await make_orch(worker.url, capacity=0)])
    with pytest.raises(NoOrchestrators, match=f"No orchestrators found for capability {CAPABILITY}"):
        await gateway.start_stream(CAPABILITY)
