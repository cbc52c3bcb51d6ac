"""The Live Runner registry: runners, their sessions and credentials.

Follows go-livepeer ``ai/runner/live_runner.go`` (``LiveRunnerRegistry``): ``Heartbeat``, ``Unregister``,
``RegisterStaticRunners``, ``ReserveSession``, ``ReleaseSession``, ``ValidSessionToken``, ``Runners``,
``removeExpiredRunners`` and ``checkStaticRunnerHealth``. ``price_info`` is decoded as Go decodes it, and
validated only in on-chain mode (``normalizeHeartbeat`` -> ``normalizeLiveRunnerPriceInfo``; off-chain upstream
returns before it); it is never converted or advertised, and reservations need no payment.

No I/O here: time comes in as ``now``, and the HTTP layer (``live_runner_routes.py``) creates the trickle
channels and runs the health checks, then tells the registry what happened.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

PERSISTENT = "persistent"
SINGLE_SHOT = "single-shot"
MAX_METADATA_BYTES = 1024
MAX_CHANNELS_PER_REQUEST = 25
CHANNEL_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
PRICE_UNITS = ("hour", "720p", "fixed")
JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")  # encoding/json isValidNumber


class RunnerError(Exception):
    """``runner.RunnerError``: a message and the HTTP status it is answered with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def random_id(prefix: str, nbytes: int = 5) -> str:
    """``"runner_" + randomStr(5)``: lower-case unpadded base32."""
    return prefix + base64.b32encode(secrets.token_bytes(nbytes)).decode().rstrip("=").lower()


def derive_secret(seed: bytes, label: str) -> str:
    """A per-runner secret derived from its seed (HMAC-SHA256), so it changes when the runner re-registers."""
    digest = hmac.new(seed, label.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().rstrip("=").lower()


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()``: ``5s``, ``500ms``, ``1m30s``, ``1.5s``."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_trim(ns / 1_000)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_trim(ns / 1_000_000)}ms"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = f"{hours}h" if hours else ""
    if hours or minutes:
        text += f"{minutes}m"
    return f"{sign}{text}{_trim(rest / 1e9)}s"


def _trim(value: float) -> str:
    return f"{value:.9f}".rstrip("0").rstrip(".")


def _absolute_http(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def normalize_price_info(info: dict[str, Any]) -> dict[str, Any]:
    """``normalizeLiveRunnerPriceInfo``: a positive decimal price (``priceRat``), currency usd (the default),
    unit hour (the default), 720p or fixed; raises ``RunnerError(400)``."""
    price = str(info.get("price", "")).strip()
    if not price:
        raise RunnerError(400, "price_info.price is required")
    try:
        positive = Fraction(price) > 0  # big.Rat.SetString
    except (ValueError, ZeroDivisionError):
        positive = False
    if not positive:
        raise RunnerError(400, "price_info.price must be a positive decimal")
    currency = str(info.get("currency", "")).strip().lower() or "usd"
    if currency != "usd":
        raise RunnerError(400, "price_info.currency must be usd")
    unit = str(info.get("unit", "")).strip().lower() or "hour"
    if unit not in PRICE_UNITS:
        raise RunnerError(400, "price_info.unit must be hour, 720p, or fixed")
    return {**info, "currency": currency, "unit": unit}


def normalize_runner(fields: dict[str, Any], onchain: bool = False) -> dict[str, Any]:
    """``normalizeHeartbeat``; raises ``RunnerError(400)``. The price is checked only on-chain."""
    out = dict(fields)
    if not _absolute_http(str(out.get("runner_url") or "")):
        raise RunnerError(400, "invalid runner_url")
    app = out.get("app")
    if not isinstance(app, str) or not app or app != app.strip():
        raise RunnerError(400, "app must be trimmed")
    metadata = out.get("metadata") or ""
    if not isinstance(metadata, str) or len(metadata.encode()) > MAX_METADATA_BYTES:
        raise RunnerError(400, f"metadata must be at most {MAX_METADATA_BYTES} bytes")
    if "\ufffd" in metadata:
        raise RunnerError(400, "metadata must not contain Unicode replacement character U+FFFD")
    status = out.get("status") or ""
    if not isinstance(status, str) or status != status.strip().lower():
        raise RunnerError(400, "status must be lowercase and trimmed")
    mode = out.get("mode") or PERSISTENT
    mode = SINGLE_SHOT if mode == "single_shot" else mode
    if mode not in (PERSISTENT, SINGLE_SHOT):
        raise RunnerError(400, f'mode must be "{PERSISTENT}" or "{SINGLE_SHOT}"')
    capacity = out.get("capacity") or 0
    if not isinstance(capacity, int) or isinstance(capacity, bool):
        raise RunnerError(400, "json: capacity must be an integer")
    if capacity < 0:
        raise RunnerError(400, "capacity must be >= 0")
    out.update(metadata=metadata, status=status, mode=mode, capacity=capacity or 1)
    if onchain:
        out["price_info"] = normalize_price_info(out.get("price_info") or {})
    return out


def decode_price_info(raw: Any) -> dict[str, Any]:
    """``LiveRunnerPriceInfo`` as ``json.Unmarshal`` fills it: ``price`` is a ``json.Number`` (a JSON number, or a
    string holding a valid number literal), ``currency`` and ``unit`` are strings."""
    if not isinstance(raw, dict):
        raise RunnerError(400, "json: cannot unmarshal price_info into Go value of type runner.LiveRunnerPriceInfo")
    info = {k: raw[k] for k in ("price", "currency", "unit") if raw.get(k) is not None}
    price = info.get("price")
    if isinstance(price, bool) or not isinstance(price, int | float | str | type(None)):
        raise RunnerError(400, "json: cannot unmarshal price_info.price into Go value of type json.Number")
    if isinstance(price, str) and not JSON_NUMBER.fullmatch(price):
        raise RunnerError(400, f"json: invalid number literal, trying to unmarshal {price!r} into Number")
    for key in ("currency", "unit"):
        if not isinstance(info.get(key, ""), str):
            raise RunnerError(400, f"json: cannot unmarshal price_info.{key} into a Go string")
    return info


def heartbeat_fields(body: Any) -> dict[str, Any]:
    """The ``LiveRunnerHeartbeatRequest`` fields of a decoded body (others are ignored, as Go does)."""
    if not isinstance(body, dict):
        raise RunnerError(400, "json: cannot unmarshal into Go value of type runner.LiveRunnerHeartbeatRequest")
    keys = (
        "runner_id", "label", "proxy", "runner_url", "version", "metadata", "status", "mode",
        "gpu", "app", "capacity", "price_info", "session_ids",
    )  # fmt: skip
    fields = {k: body[k] for k in keys if body.get(k) is not None}
    for key in ("runner_id", "label", "runner_url", "version", "metadata", "status", "mode", "app"):
        if key in fields and not isinstance(fields[key], str):
            raise RunnerError(400, f"json: cannot unmarshal {key} into a Go string")
    gpu = fields.get("gpu")
    if isinstance(gpu, int) and not isinstance(gpu, bool):
        fields["gpu"] = {"id": str(gpu)}  # an integer is a local device index
    if "price_info" in fields:
        fields["price_info"] = decode_price_info(fields["price_info"])
    return fields


@dataclass
class Channel:
    """``LiveRunnerTrickleChannel``."""

    name: str
    channel_name: str
    url: str
    internal_url: str
    mime_type: str

    def to_json(self) -> dict[str, str]:
        data = {
            "name": self.name,
            "channel_name": self.channel_name,
            "url": self.url,
            "internal_url": self.internal_url,
            "mime_type": self.mime_type,
        }
        if not self.internal_url:
            del data["internal_url"]  # `internal_url,omitempty`
        return data


@dataclass
class RunnerSession:
    session_id: str
    created_at: float
    channels: dict[str, Channel] = field(default_factory=dict)


@dataclass
class Runner:
    runner_id: str
    seed: bytes
    fields: dict[str, Any]
    last_heartbeat: float
    static: bool = False
    route: str = ""
    heartbeat_secret: str = ""
    health_url: str = ""
    healthy_status_code: int = 200
    o2r: Channel | None = None
    sessions: dict[str, RunnerSession] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.fields.get("status", "") in ("", "ready")

    @property
    def capacity(self) -> int:
        return int(self.fields.get("capacity") or 1)

    @property
    def mode(self) -> str:
        return self.fields.get("mode") or PERSISTENT

    def session_token(self, session_id: str) -> str:
        return derive_secret(self.seed, "session:" + session_id)

    def session_ids(self) -> list[str]:
        return [s.session_id for s in sorted(self.sessions.values(), key=lambda s: (s.created_at, s.session_id))]


@dataclass
class Released:
    """What the HTTP layer must clean up after the registry dropped something (channels to close, events)."""

    channels: list[str] = field(default_factory=list)
    events: list[tuple[Runner, str, str]] = field(default_factory=list)  # (runner, event, session_id)

    def merge(self, other: Released) -> Released:
        self.channels += other.channels
        self.events += other.events
        return self


class LiveRunnerRegistry:
    def __init__(
        self, registration_secret: str, heartbeat_interval: float, heartbeat_ttl: float, onchain: bool = False
    ) -> None:
        self.registration_secret = registration_secret
        self.onchain = onchain  # LiveRunnerRegistryConfig.Onchain: prices are validated
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_ttl = heartbeat_ttl
        self.runners: dict[str, Runner] = {}  # by route: runner id, or label for static label routing
        self.removed: list[dict[str, Any]] = []

    # -- lookups -----------------------------------------------------------------------------------------

    def expired(self, runner: Runner, now: float) -> bool:
        return not runner.static and now - runner.last_heartbeat > self.heartbeat_ttl

    def live(self, route: str, now: float) -> Runner:
        """``lockLiveRunner``: the runner, or 404 when unknown or expired."""
        runner = self.runners.get(route)
        if runner is None or self.expired(runner, now):
            raise RunnerError(404, "runner not found")
        return runner

    def ready_runner(self, route: str, now: float) -> Runner:
        runner = self.live(route, now)
        if not runner.ready:
            raise RunnerError(404, "runner not found")
        return runner

    def session(self, route: str, session_id: str, now: float) -> tuple[Runner, RunnerSession]:
        runner = self.ready_runner(route, now)
        session = runner.sessions.get(session_id)
        if session is None:
            raise RunnerError(404, "runner session not found")
        return runner, session

    def check_session_token(self, route: str, session_id: str, token: str, now: float) -> tuple[Runner, RunnerSession]:
        runner, session = self.session(route, session_id, now)
        if not hmac.compare_digest(token.encode(), runner.session_token(session_id).encode()):
            raise RunnerError(401, "invalid authorization")
        return runner, session

    # -- dynamic runners ---------------------------------------------------------------------------------

    def heartbeat(self, body: Any, auth: str, now: float) -> tuple[Runner, bool]:
        """``Heartbeat``: (runner, created). A new runner needs the orchestrator secret, a known one its own."""
        fields = heartbeat_fields(body)
        runner_id = str(fields.get("runner_id", "")).strip() or random_id("runner_")
        fields = normalize_runner({**fields, "runner_id": runner_id}, self.onchain)
        runner = self.runners.get(runner_id)
        if runner is None:
            if not self.registration_secret:
                raise RunnerError(404, "dynamic live runner registration is disabled")
            if not hmac.compare_digest(auth.encode(), self.registration_secret.encode()):
                raise RunnerError(401, "invalid registration authorization")
            seed = secrets.token_bytes(32)
            runner = Runner(
                runner_id, seed, fields, now, route=runner_id, heartbeat_secret=derive_secret(seed, "heartbeat")
            )
            runner.history.append({"action": "register", "at": now})
            self.runners[runner_id] = runner
            return runner, True
        if self.expired(runner, now):
            raise RunnerError(404, "runner not found")  # until the expiry sweep removes it; then re-register
        if not hmac.compare_digest(auth.encode(), runner.heartbeat_secret.encode()):
            raise RunnerError(401, "invalid heartbeat authorization")
        if runner.static:
            raise RunnerError(400, "static runner cannot heartbeat")
        runner.fields = fields
        runner.last_heartbeat = now
        return runner, False

    def heartbeat_reply(self, runner: Runner, created: bool, orchestrator_url: str) -> dict[str, Any]:
        """``LiveRunnerHeartbeatResponse``: the secret and o2r only on the first call."""
        reply: dict[str, Any] = {
            "runner_id": runner.runner_id,
            "orchestrator": orchestrator_url,
            "heartbeat_interval": go_duration(self.heartbeat_interval),
            "heartbeat_ttl": go_duration(self.heartbeat_ttl),
            "session_ids": runner.session_ids(),
        }
        if created:
            reply["heartbeat_secret"] = runner.heartbeat_secret
            if runner.o2r is not None:
                reply["o2r"] = runner.o2r.to_json()
        return reply

    def unregister(self, route: str, auth: str, now: float) -> Released:
        runner = self.live(route, now)
        if runner.static:
            raise RunnerError(400, "static runner cannot unregister with heartbeat credentials")
        if not hmac.compare_digest(auth.encode(), runner.heartbeat_secret.encode()):
            raise RunnerError(401, "invalid authorization")
        return self._remove(route, "unregister", now)

    def sweep(self, now: float) -> Released:
        """``removeExpiredRunners``: drop runners silent for longer than the TTL, with their sessions."""
        released = Released()
        for route, runner in list(self.runners.items()):
            if self.expired(runner, now):
                released.merge(self._remove(route, "heartbeat timeout", now))
        return released

    def _remove(self, route: str, reason: str, now: float) -> Released:
        runner = self.runners.pop(route)
        released = self._release_all(runner)
        if runner.o2r is not None:
            released.channels.append(runner.o2r.channel_name)
        self.removed.append({"runner_id": runner.runner_id, "reason": reason, "at": now})
        return released

    # -- static runners ----------------------------------------------------------------------------------

    def normalize_static(self, body: Any) -> list[dict[str, Any]]:
        """``normalizeStaticLiveRunnerConfig``: the whole document first (routing, default status code, a
        relative ``health_url`` joined to ``runner_url``); raises ``RunnerError(400)``."""
        if not isinstance(body, dict) or not isinstance(body.get("runners", []), list):
            raise RunnerError(400, "json: cannot unmarshal into Go value of type runner.StaticLiveRunnerConfig")
        entries: list[dict[str, Any]] = []
        for i, raw in enumerate(body.get("runners") or []):
            if not isinstance(raw, dict):
                raise RunnerError(400, f"runners[{i}]: not an object")
            entry = dict(raw)
            entry["routing"] = str(entry.get("routing") or "").strip() or "runner-id"
            if entry["routing"] not in ("runner-id", "label"):
                raise RunnerError(400, f'runners[{i}]: routing must be "runner-id" or "label"')
            entry["healthy_status_code"] = entry.get("healthy_status_code") or 200
            health_url = str(entry.get("health_url") or "")
            if health_url.startswith("/") and not health_url.startswith("//"):
                if not _absolute_http(str(entry.get("runner_url") or "")):
                    raise RunnerError(400, f"runners[{i}]: invalid runner_url")
                health_url = str(entry["runner_url"]).rstrip("/") + health_url
            entry["health_url"] = health_url
            entries.append(entry)
        return entries

    def build_static(self, i: int, entry: dict[str, Any], labels: set[str]) -> dict[str, Any]:
        """``buildStaticRunner`` (``normalizeHeartbeat`` included) and ``RegisterStaticRunners``' label checks for
        entry ``i``; ``labels`` collects the batch's labels. Raises ``RunnerError(400)``."""
        label = entry.get("label") or ""
        health_url, code = entry["health_url"], entry["healthy_status_code"]
        if not isinstance(label, str) or not label or label != label.strip():
            raise RunnerError(400, f"runners[{i}]: label is required and must be trimmed")
        if not health_url:
            raise RunnerError(400, f"runners[{i}]: health_url is required")
        if not _absolute_http(health_url):
            raise RunnerError(400, f"runners[{i}]: invalid health_url")
        if not isinstance(code, int) or not 100 <= code <= 599:
            raise RunnerError(400, f"runners[{i}]: healthy_status_code must be a valid HTTP status code")
        try:
            fields = normalize_runner(heartbeat_fields({**entry, "runner_id": "static"}), self.onchain)
        except RunnerError as exc:
            raise RunnerError(400, f"runners[{i}]: {exc}") from exc
        if label in labels:
            raise RunnerError(400, f"runners[{i}]: duplicate label {label!r}")
        if entry["routing"] == "label" and "/" in label:
            raise RunnerError(400, f'runners[{i}]: label cannot contain / when routing is "label"')
        labels.add(label)
        fields.pop("session_ids", None)
        return {"fields": fields, "label": label, "routing": entry["routing"], "health_url": health_url, "code": code}

    def upsert_static(self, entries: list[dict[str, Any]], healthy: list[bool], now: float) -> tuple[list, Released]:
        """``RegisterStaticRunners``: upsert by label, keeping the runner id and sessions; nothing is removed."""
        existing = {r.fields.get("label"): r for r in self.runners.values() if r.static}
        registrations: list[dict[str, Any]] = []
        released = Released()
        for entry, ok in zip(entries, healthy, strict=True):
            runner = existing.get(entry["label"])
            if runner is None:
                seed = secrets.token_bytes(32)
                runner_id = random_id("runner_")
                while runner_id in self.runners:
                    runner_id = random_id("runner_")
                runner = Runner(runner_id, seed, {}, now, static=True)
            fields = {**entry["fields"], "runner_id": runner.runner_id, "status": "ready" if ok else "unavailable"}
            if not ok:
                released.merge(self._release_all(runner))
            runner.fields = fields
            runner.last_heartbeat = now
            runner.health_url = entry["health_url"]
            runner.healthy_status_code = entry["code"]
            route = entry["label"] if entry["routing"] == "label" else runner.runner_id
            for old_route, other in list(self.runners.items()):
                if other is runner and old_route != route:
                    del self.runners[old_route]
            runner.route = route
            self.runners[route] = runner
            registrations.append(
                {
                    "runner_id": runner.runner_id,
                    "label": entry["label"],
                    "app": fields["app"],
                    "runner_url": fields["runner_url"],
                    "mode": fields["mode"],
                    "health_url": entry["health_url"],
                    "healthy_status_code": entry["code"],
                    "healthy": ok,
                }
            )
        return registrations, released

    def static_runners(self) -> list[Runner]:
        return [r for r in self.runners.values() if r.static]

    def set_static_health(self, runner: Runner, healthy: bool) -> Released:
        """``checkStaticRunnerHealth``: one failed check makes the runner unavailable and releases its sessions."""
        if self.runners.get(runner.route) is not runner:
            return Released()
        status = "ready" if healthy else "unavailable"
        if runner.fields.get("status") != status:
            runner.history.append({"action": f"health {status}", "at": time.time()})
        runner.fields["status"] = status
        return Released() if healthy else self._release_all(runner)

    # -- sessions ----------------------------------------------------------------------------------------

    def reserve(self, route: str, now: float) -> tuple[Runner, RunnerSession]:
        """``ReserveSession``: 503 when every slot is taken."""
        runner = self.ready_runner(route, now)
        if len(runner.sessions) >= runner.capacity:
            raise RunnerError(503, "no capacity available for runner")
        session_id = random_id("session_")
        while session_id in runner.sessions:
            session_id = random_id("session_")
        session = RunnerSession(session_id, now)
        runner.sessions[session_id] = session
        return runner, session

    def release(self, route: str, session_id: str, now: float) -> Released:
        """``ReleaseSession``: releasing an unknown session of a known runner is not an error."""
        return self._release(self.live(route, now), session_id)

    def _release(self, runner: Runner, session_id: str) -> Released:
        session = runner.sessions.pop(session_id, None)
        if session is None:
            return Released()
        return Released([c.channel_name for c in session.channels.values()], [(runner, "released", session_id)])

    def _release_all(self, runner: Runner) -> Released:
        released = Released()
        for session_id in list(runner.sessions):
            released.merge(self._release(runner, session_id))
        return released

    # -- discovery ---------------------------------------------------------------------------------------

    def discovery(self, service_url: str, now: float) -> list[dict[str, Any]]:
        """``Runners`` + ``DiscoverLiveRunners``: ready, unexpired runners; URLs on the orchestrator only."""
        runners = []
        for runner in self.runners.values():
            if self.expired(runner, now) or not runner.ready:
                continue
            tail = "session" if runner.mode == PERSISTENT else "app"
            entry: dict[str, Any] = {
                "url": f"{service_url}/apps/{runner.route}/{tail}",
                "gpu": runner.fields.get("gpu"),
                "app": runner.fields["app"],
                "version": runner.fields.get("version"),
                "metadata": runner.fields.get("metadata"),
                "mode": runner.mode,
                "capacity": runner.capacity,
                "capacity_used": len(runner.sessions),
                "capacity_available": runner.capacity - len(runner.sessions),
            }
            runners.append({k: v for k, v in entry.items() if v not in (None, "")})  # Go omitempty
        entry = {"address": service_url}
        if runners:  # `runners,omitempty`: no key at all when none is ready
            entry["runners"] = runners
        return [entry]

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "runners": {
                r.runner_id: {
                    "route": r.route,
                    "static": r.static,
                    "fields": r.fields,
                    "expired": self.expired(r, now),
                    "last_heartbeat": r.last_heartbeat,
                    "sessions": {
                        s.session_id: {
                            "created_at": s.created_at,
                            "channels": [c.to_json() for c in s.channels.values()],
                        }
                        for s in r.sessions.values()
                    },
                    "o2r": r.o2r.to_json() if r.o2r else None,
                    "history": r.history,
                }
                for r in self.runners.values()
            },
            "removed": self.removed,
        }
