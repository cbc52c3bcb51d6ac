"""What a worker pod says about itself: its state, how many streams it runs, and which.

Two payload shapes are understood, both pure functions of the decoded JSON:
- ``GET /stream/status`` of our runtime (``byoc_runtime`` ``Worker.status``): ``state``,
  ``active_streams``, ``capacity`` and ``sessions[]`` with ``stream_id`` and ``gateway_request_id``;
- the same route of a PyTrickle ``StreamServer`` (``pytrickle/server.py`` ``_handle_get_status``): ``state``,
  ``active_streams`` (0 or 1), ``client_running`` and ``current_params.gateway_request_id`` (go-livepeer sets
  ``gateway_request_id`` to the stream id, so this names the running stream);
- ``GET /health`` as a fallback: ``status`` LOADING/IDLE/OK/ERROR, with ``active_streams``/``capacity`` on ours.

Our runtime adds ``draining`` to both: a draining pod keeps its streams but takes no new one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

LOADING, IDLE, OK, ERROR, UNKNOWN = "LOADING", "IDLE", "OK", "ERROR", "UNKNOWN"

StreamKeys = frozenset[str]  # the ids one stream answers to (stream id and gateway request id)


@dataclass(frozen=True)
class PodLoad:
    state: str
    active: int
    capacity: int | None  # as the pod reports it; None when it does not say
    streams: tuple[StreamKeys, ...] = ()
    streams_known: bool = False  # False when the payload cannot name the streams (plain /health)
    draining: bool = False  # the pod is terminating: its streams go on, new ones go elsewhere

    def slots(self, sessions_per_pod: int) -> int:
        return sessions_per_pod if self.capacity is None else min(sessions_per_pod, self.capacity)

    def free(self, sessions_per_pod: int) -> int:
        if self.state in (LOADING, ERROR) or self.draining:
            return 0
        return max(0, self.slots(sessions_per_pod) - self.active)

    def with_started(self, keys: StreamKeys) -> PodLoad:
        """The load after this router placed a stream here, until the next poll says better."""
        state = OK if self.state == IDLE else self.state
        return replace(self, state=state, active=self.active + 1, streams=(*self.streams, keys))

    def with_stopped(self, key: str) -> PodLoad:
        streams = tuple(s for s in self.streams if key not in s)
        active = max(0, self.active - 1)
        state = IDLE if self.state == OK and active == 0 else self.state
        return replace(self, state=state, active=active, streams=streams)

    def full(self, sessions_per_pod: int) -> PodLoad:
        """The load after the pod refused a start for lack of room."""
        return replace(self, active=max(self.active, self.slots(sessions_per_pod)), streams_known=False)


def _state(data: dict[str, Any]) -> str:
    state = data.get("state") or data.get("status")
    return state.upper() if isinstance(state, str) and state.upper() in (LOADING, IDLE, OK, ERROR) else UNKNOWN


def _draining(data: dict[str, Any]) -> bool:
    """Our runtime says ``draining`` (from its preStop hook on); other workers drain unseen, so the router
    also stops placing streams on a pod once it leaves the headless Service (terminating pods are not ready)."""
    return data.get("draining") is True


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _keys(*values: Any) -> StreamKeys:
    return frozenset(v for v in values if isinstance(v, str) and v)


def parse_status(data: Any) -> PodLoad:
    """A ``GET /stream/status`` payload (ours or PyTrickle's) as a ``PodLoad``."""
    if not isinstance(data, dict):
        return PodLoad(UNKNOWN, 0, None)
    state = _state(data)
    sessions = data.get("sessions")
    if isinstance(sessions, list):  # our runtime: every session named
        streams = tuple(
            keys
            for s in sessions
            if isinstance(s, dict) and (keys := _keys(s.get("stream_id"), s.get("gateway_request_id")))
        )
        active = _int(data.get("active_streams"))
        count = len(streams) if active is None else active
        return PodLoad(state, count, _int(data.get("capacity")), streams, True, _draining(data))
    active = _int(data.get("active_streams"))
    if active is None:
        active = 1 if state == OK else 0
    params = data.get("current_params")
    running = data.get("client_running", active > 0)
    keys = _keys(params.get("gateway_request_id")) if isinstance(params, dict) and running else frozenset()
    # PyTrickle runs one stream; it is named whenever it runs with current_params set.
    known = active == 0 or bool(keys)
    return PodLoad(state, active, _int(data.get("capacity")), (keys,) if keys else (), known, _draining(data))


def parse_health(data: Any) -> PodLoad:
    """A ``GET /health`` payload: no stream names, and without counts IDLE is 0 streams and OK is 1."""
    if not isinstance(data, dict):
        return PodLoad(UNKNOWN, 0, None)
    state = _state(data)
    active = _int(data.get("active_streams"))
    if active is None:
        active = 1 if state == OK else 0
    return PodLoad(state, active, _int(data.get("capacity")), (), active == 0, _draining(data))
