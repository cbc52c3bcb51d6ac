"""The Live Runner wire, as go-livepeer speaks it (``ai/runner/live_runner.go``, ``server/ai_http.go``,
``doc/live-runner.md``; summary in protocols.md 3b). Pure data and parsing: no I/O.

Registration: ``POST {orch}/runners/heartbeat`` with a raw ``Authorization`` (the orchestrator secret first,
then the ``heartbeat_secret`` of the reply), ``POST {orch}/runners/{id}/unregister`` (204).
Sessions: the orchestrator's app proxy adds the four ``Livepeer-*`` headers below; the runner calls back
``POST {Session-Control}/channels`` and ``POST {Session-Control}/stop`` with ``Livepeer-Session-Token``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, urlsplit

SESSION_ID_HEADER = "Livepeer-Session-Id"
SESSION_TOKEN_HEADER = "Livepeer-Session-Token"
RUNNER_ROUTE_HEADER = "Livepeer-Runner-Route"
SESSION_CONTROL_HEADER = "Livepeer-Session-Control"
SESSION_HEADERS = (SESSION_ID_HEADER, SESSION_TOKEN_HEADER, RUNNER_ROUTE_HEADER, SESSION_CONTROL_HEADER)

HEARTBEAT_PATH = "/runners/heartbeat"
CHANNELS_CALLBACK = "channels"
STOP_CALLBACK = "stop"

MODE_PERSISTENT: Final = "persistent"
MODE_SINGLE_SHOT: Final = "single-shot"
# Only "" and "ready" are routable; any other lowercase word hides the runner (and breaks its sessions).
STATUS_READY = "ready"
STATUS_LOADING = "loading"
STATUS_ERROR = "error"
STATUS_UNREACHABLE = "unreachable"
STATUS_DRAINING = "draining"
MAX_METADATA_BYTES = 1024
MAX_CHANNELS = 25
DEFAULT_HEARTBEAT_INTERVAL = 5.0  # go-livepeer's default, used until a reply says otherwise

CHANNEL_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def unregister_path(runner_id: str) -> str:
    return f"/runners/{quote(runner_id, safe='')}/unregister"


def join_url(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/")


def parse_go_duration(text: Any) -> float | None:
    """Seconds in a Go ``time.Duration.String()`` ("5s", "500ms", "1m30s"); None when absent or malformed."""
    if not isinstance(text, str) or not text.strip():
        return None
    text = text.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    total, pos = 0.0, 0
    for match in _DURATION_PART.finditer(body):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    return sign * total if pos == len(body) and pos else None


# -- registration ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunnerGPU:
    """``LiveRunnerGPU``: every field ``omitempty``."""

    id: str = ""
    name: str = ""
    vram_mb: int = 0

    def to_json(self) -> dict[str, Any]:
        data = {"id": self.id, "name": self.name, "vram_mb": self.vram_mb}
        return {k: v for k, v in data.items() if v}


@dataclass(frozen=True, slots=True)
class RunnerAdvert:
    """What one heartbeat says about the runner (``LiveRunnerHeartbeatRequest``)."""

    app: str
    runner_url: str
    runner_id: str = ""
    status: str = STATUS_READY
    capacity: int = 1
    mode: str = MODE_PERSISTENT
    label: str = ""
    version: str = ""
    metadata: str = ""
    gpu: RunnerGPU | None = None
    price_info: Mapping[str, Any] | None = None
    session_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The request body; optional fields left out when empty, as Go's ``omitempty`` would."""
        body: dict[str, Any] = {"app": self.app, "runner_url": self.runner_url, "capacity": self.capacity}
        optional: dict[str, Any] = {
            "runner_id": self.runner_id,
            "status": self.status,
            "mode": self.mode,
            "label": self.label,
            "version": self.version,
            "metadata": self.metadata,
            "gpu": self.gpu.to_json() if self.gpu else None,
            "price_info": dict(self.price_info) if self.price_info else None,
            "session_ids": list(self.session_ids),
        }
        body.update({k: v for k, v in optional.items() if v})
        return body


def advert_errors(advert: RunnerAdvert) -> list[str]:
    """What go-livepeer's ``normalizeHeartbeat`` would refuse (400), checked before anything is sent."""
    errors = []
    parts = urlsplit(advert.runner_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        errors.append(f"runner_url must be an absolute http(s) URL, got {advert.runner_url!r}")
    if not advert.app or advert.app != advert.app.strip():
        errors.append("app must be non-empty and trimmed")
    if len(advert.metadata.encode()) > MAX_METADATA_BYTES:
        errors.append(f"metadata must be at most {MAX_METADATA_BYTES} bytes")
    if "\ufffd" in advert.metadata:
        errors.append("metadata must not contain U+FFFD")
    if advert.status != advert.status.strip().lower():
        errors.append("status must be lowercase and trimmed")
    if advert.mode not in (MODE_PERSISTENT, MODE_SINGLE_SHOT):
        errors.append(f"mode must be {MODE_PERSISTENT!r} or {MODE_SINGLE_SHOT!r}")
    if advert.capacity < 0:
        errors.append("capacity must be >= 0")
    return errors


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    """``LiveRunnerHeartbeatResponse``. ``heartbeat_secret`` and ``o2r`` come on the first call only."""

    runner_id: str
    orchestrator: str = ""
    heartbeat_interval: float | None = None
    heartbeat_ttl: float | None = None
    heartbeat_secret: str = field(default="", repr=False)
    session_ids: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Any) -> HeartbeatReply:
        if not isinstance(data, dict) or not isinstance(data.get("runner_id"), str) or not data["runner_id"].strip():
            raise ValueError("heartbeat reply has no runner_id")
        orchestrator = data.get("orchestrator")
        secret = data.get("heartbeat_secret")
        sessions = data.get("session_ids")
        return cls(
            runner_id=data["runner_id"].strip(),
            orchestrator=orchestrator.strip().rstrip("/") if isinstance(orchestrator, str) else "",
            heartbeat_interval=parse_go_duration(data.get("heartbeat_interval")),
            heartbeat_ttl=parse_go_duration(data.get("heartbeat_ttl")),
            heartbeat_secret=secret.strip() if isinstance(secret, str) else "",
            session_ids=tuple(s for s in sessions if isinstance(s, str)) if isinstance(sessions, list) else (),
        )


# -- sessions --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionContext:
    """The headers the orchestrator's app proxy adds to every request of a session (it overwrites any a client
    sent, so behind the proxy they cannot be forged)."""

    session_id: str
    token: str = field(repr=False)
    control_url: str
    route: str = ""

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> SessionContext | None:
        """None when the request did not come through a Live Runner proxy; ``ValueError`` when half of it did."""
        session_id = (headers.get(SESSION_ID_HEADER) or "").strip()
        if not session_id:
            return None
        token = (headers.get(SESSION_TOKEN_HEADER) or "").strip()
        control = (headers.get(SESSION_CONTROL_HEADER) or "").strip()
        if not token or not control.startswith(("http://", "https://")):
            raise ValueError(
                f"{SESSION_ID_HEADER} without {SESSION_TOKEN_HEADER} and an http(s) {SESSION_CONTROL_HEADER}"
            )
        return cls(session_id, token, control, (headers.get(RUNNER_ROUTE_HEADER) or "").strip())

    def callback_url(self, name: str) -> str:
        return join_url(self.control_url, name)

    def auth_headers(self) -> dict[str, str]:
        return {SESSION_TOKEN_HEADER: self.token}


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    name: str
    mime_type: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "mime_type": self.mime_type}


@dataclass(frozen=True, slots=True)
class Channel:
    """``LiveRunnerTrickleChannel``: ``url`` is for the client, ``internal_url`` (when given) for the runner."""

    name: str
    url: str
    internal_url: str = ""
    mime_type: str = ""
    channel_name: str = ""

    @property
    def runner_url(self) -> str:
        return self.internal_url or self.url

    @classmethod
    def from_json(cls, data: Any) -> Channel:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not isinstance(data.get("url"), str):
            raise ValueError("channel descriptor needs a name and a url")
        return cls(
            name=data["name"],
            url=data["url"],
            internal_url=str(data.get("internal_url") or ""),
            mime_type=str(data.get("mime_type") or ""),
            channel_name=str(data.get("channel_name") or ""),
        )


# The channels of one live-video session, named as go-livepeer's examples and the Python SDK name them:
# the client publishes "in" and reads "out"; "control" carries params to the runner, "events"/"data" back.
IN, OUT, CONTROL, EVENTS, DATA = "in", "out", "control", "events", "data"
LIVE_VIDEO_CHANNELS = (
    ChannelSpec(IN, "video/mp2t"),
    ChannelSpec(OUT, "video/mp2t"),
    ChannelSpec(CONTROL, "application/json"),
    ChannelSpec(EVENTS, "application/json"),
    ChannelSpec(DATA, "application/jsonl"),
)


def channels_request(specs: tuple[ChannelSpec, ...] = LIVE_VIDEO_CHANNELS) -> dict[str, Any]:
    return {"channels": [spec.to_json() for spec in specs]}


def parse_channels_reply(data: Any, wanted: tuple[ChannelSpec, ...] = LIVE_VIDEO_CHANNELS) -> dict[str, Channel]:
    """Channels by name; ``ValueError`` when one asked for is missing."""
    items = data.get("channels") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError("channels reply has no channels list")
    channels = {c.name: c for c in (Channel.from_json(item) for item in items)}
    missing = [spec.name for spec in wanted if spec.name not in channels]
    if missing:
        raise ValueError(f"channels reply lacks {', '.join(missing)}")
    return channels
