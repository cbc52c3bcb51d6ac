"""A test gateway: what go-livepeer's gateway does for a BYOC live stream, driven from Python.

    async with Gateway([orch.url], GatewayTimings(max_event_gap=5)) as gateway:
        stream = await gateway.start_stream("my-capability", params={"width": 256}, input_segments=segments)
        await stream.update({"prompt": "a cat"})      # the orchestrator's reply; cached for later orchestrators
        ...                                          # stream.events, .output_segments, .data_lines, .attempts
        await stream.stop()                          # or a watchdog ends it: stream.end says how and why

It picks the orchestrators whose ``GET /process/token`` reports free capacity, starts the stream at one with a
signed ``/ai/stream/start`` and plays the gateway's part on the channels it names: input published in real
time, output, events and data read, a control keepalive, the last update replayed after a swap, and the
watchdogs (no events, no output while input flows, a channel's end) that stop the stream at that orchestrator
and swap to the next, within upstream's swap limit. Timings default to upstream's (``GatewayTimings``).

Modules: ``stream.py`` (the stream's life and swaps: ``byoc/stream_gateway.go``), ``session.py`` (one
orchestrator's channels and watchdogs: ``byoc/trickle.go``), ``jobs.py`` (headers, tokens, requests:
``byoc/job_gateway.go``, ``byoc/utils.go``), ``record.py`` (what a stream saw), ``timings.py``.
"""

from .jobs import OrchestratorToken
from .record import StreamRecord
from .session import (
    CANCELLED,
    CONTROL_GONE,
    CONTROL_WRITE_FAILED,
    DATA_ENDED,
    EVENTS_TIMEOUT,
    INPUT_GONE,
    OUTPUT_ENDED,
    OUTPUT_TIMEOUT,
)
from .stream import Attempt, Gateway, GatewayStream, NoOrchestrators, Reply, StreamEnd, StreamExists
from .timings import GatewayTimings

__all__ = [
    "CANCELLED",
    "CONTROL_GONE",
    "CONTROL_WRITE_FAILED",
    "DATA_ENDED",
    "EVENTS_TIMEOUT",
    "INPUT_GONE",
    "OUTPUT_ENDED",
    "OUTPUT_TIMEOUT",
    "Attempt",
    "Gateway",
    "GatewayStream",
    "GatewayTimings",
    "NoOrchestrators",
    "OrchestratorToken",
    "Reply",
    "StreamEnd",
    "StreamExists",
    "StreamRecord",
]
