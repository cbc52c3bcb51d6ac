"""Hypothesis strategies for requests to the worker REST contract (runtime and router alike): stream routes at
the root and under /api, with JSON bodies that are nearly right, JSON that is not an object, and bytes that are
not JSON at all, under assorted content types and stream-id headers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from .worker_specs import JSON_VALUES, text

# Trickle URLs only ever point at a closed local port: a session that tries them fails fast, on this machine.
CLOSED_URLS = st.sampled_from(["http://127.0.0.1:9/in", "https://127.0.0.1:9/x", ""])
STREAM_IDS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)

# Values a client might put where a number, string or boolean is expected.
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.from_regex(r"\A-?[0-9]{1,6}\Z"),
    text(12),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(text(5), st.integers(), max_size=2),
)
PARAMS = st.dictionaries(
    st.sampled_from(["width", "height", "max_framerate", "detect_out_resolution", "prompt", "strength"]) | text(8),
    ODD | st.integers(1, 1024),
    max_size=4,
)
START_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "gateway_request_id": STREAM_IDS | ODD,
        "stream_id": STREAM_IDS | ODD,
        "subscribe_url": CLOSED_URLS | ODD,
        "publish_url": CLOSED_URLS | ODD,
        "control_url": CLOSED_URLS | ODD,
        "events_url": CLOSED_URLS | ODD,
        "data_url": CLOSED_URLS | ODD,
        "params": PARAMS | ODD,
    },
)


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    json: Any = None  # what the body decodes to, when it is JSON

    @property
    def is_json_object(self) -> bool:
        content_type = self.headers.get("Content-Type", "")
        return content_type.startswith("application/json") and isinstance(self.json, dict)


ROUTES = [
    ("POST", "/stream/start"),
    ("POST", "/live-video-to-video"),
    ("POST", "/stream/params"),
    ("POST", "/stream/stop"),
    ("GET", "/stream/status"),
]


@st.composite
def calls(draw: st.DrawFn, routes: list[tuple[str, str]] = ROUTES) -> Call:
    method, route = draw(st.sampled_from(routes))
    prefix = draw(st.sampled_from(["", "/api"]))
    headers: dict[str, str] = {}
    if draw(st.booleans()):
        headers["X-Stream-Id"] = draw(STREAM_IDS)
    if draw(st.integers(0, 9)) == 0:
        headers["Livepeer-Session-Id"] = draw(STREAM_IDS)  # half a Live Runner proxy: no token, no control URL
    kind = draw(st.sampled_from(["object", "params", "json", "bytes", "none"]))
    decoded: Any = None
    if kind == "object":
        decoded = draw(START_BODIES)
    elif kind == "params":
        decoded = draw(PARAMS)
    elif kind == "json":
        decoded = draw(JSON_VALUES)
    body: bytes | None
    if kind == "bytes":
        body = draw(st.binary(max_size=200) | st.sampled_from([b"{", b'{"a":', b"\xff\xfe{}", b"null", b"{}}"]))
    elif kind == "none":
        body = None
    else:
        body = json.dumps(decoded).encode()
    content_type = draw(
        st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", None, "x/y"])
    )
    if content_type and body is not None:
        headers["Content-Type"] = content_type
    return Call(method, prefix + route, headers, body, decoded if kind in ("object", "params", "json") else None)
