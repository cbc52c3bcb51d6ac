"""The gateway's clocks, defaulting to go-livepeer's values (each names the upstream constant it stands for).

Tests shorten them; nothing else reads the environment or a config file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GatewayTimings:
    # byoc/trickle.go startControlPublish: a {"keep":"alive"} on the control channel every 10 s.
    keepalive_interval: float = 10.0
    # byoc/trickle.go startEventsSubscribe: eventCheckInterval and maxEventGap.
    event_check_interval: float = 10.0
    max_event_gap: float = 30.0
    # -liveOutSegmentTimeout (byoc/trickle.go startTrickleSubscribe: 30 s when unset): no output segment for this
    # long, while input came in the last half of it, ends the orchestrator's session.
    output_segment_timeout: float = 30.0
    # byoc/stream_gateway.go runStream: once more than 2 swaps were counted, a session ending within this long of
    # the last swap ends the stream.
    swap_window: float = 60.0
    # byoc/types.go jobOrchSearchTimeoutDefault / jobOrchSearchRespTimeoutDefault (getJobOrchestrators).
    orch_search_timeout: float = 1.0
    orch_response_timeout: float = 0.5
    # byoc/stream_orchestrator.go getNewTokenTimeout (getToken before a stop, an update, a later orchestrator).
    token_timeout: float = 3.0
