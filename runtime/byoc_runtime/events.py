"""Messages the worker publishes on a session's events channel, in the shape the gateway reads.

Envelope ``{"event": {...,"type": ...}, "queue_event_type": ...}`` as pytrickle ``protocol.py``
(``emit_monitoring_event``) writes it and go-livepeer ``byoc/trickle.go`` (``startEventsSubscribe``) parses it:
the gateway adds stream/request ids, treats ``type == "status"`` as the stream status, and kills the stream
when no event arrived for 30 s, which the heartbeat (every 10 s, queue ``stream_heartbeat``) prevents.
"""

from __future__ import annotations

import time
from typing import Any

QUEUE_STREAM_EVENTS = "ai_stream_events"
QUEUE_HEARTBEAT = "stream_heartbeat"

FIRST_INGEST_SEGMENT = "receive_first_ingest_segment"  # pytrickle media.py
FIRST_PROCESSED_SEGMENT = "send_first_processed_segment"


def now_ms() -> int:
    return int(time.time() * 1000)


def envelope(event: dict[str, Any], queue_event_type: str = QUEUE_STREAM_EVENTS) -> dict[str, Any]:
    return {"event": event, "queue_event_type": queue_event_type}


def heartbeat(urls: dict[str, str], width: int, height: int, fps: dict[str, float]) -> dict[str, Any]:
    return envelope(
        {
            "type": "heartbeat",
            "timestamp": now_ms(),
            "urls": urls,
            "dimensions": {"width": width, "height": height},
            "fps": fps,
        },
        QUEUE_HEARTBEAT,
    )


def status(state: str, params: dict[str, Any], fps: dict[str, float], last_error: str | None) -> dict[str, Any]:
    return envelope(
        {
            "type": "status",
            "timestamp": now_ms(),
            "state": state,
            "inference_status": {
                "fps": fps.get("processed_video_fps", 0.0),
                "last_params": params,
                "last_error": last_error,
            },
            "input_status": {"fps": fps.get("ingress_video_fps", 0.0)},
        }
    )


def error(message: str, error_type: str) -> dict[str, Any]:
    return envelope({"type": "error", "timestamp": now_ms(), "error_type": error_type, "message": message})


def trace(kind: str) -> dict[str, Any]:
    return envelope({"type": kind, "timestamp": now_ms()})


def params_updated(params: dict[str, Any]) -> dict[str, Any]:
    return envelope({"type": "params_updated", "timestamp": now_ms(), "params": params})


def stream_stopped(reason: str) -> dict[str, Any]:
    return envelope({"type": "stream_stopped", "timestamp": now_ms(), "reason": reason})
