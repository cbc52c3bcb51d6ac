"""Request bodies of the worker REST contract, validated with pydantic.

Field names and rules follow pytrickle ``api.py`` (v0.1.6) and what go-livepeer ``byoc/stream_orchestrator.go``
sends: ``/stream/start`` gets ``gateway_request_id`` (required), the five trickle URLs (optional) and
``params``, merged with whatever keys the gateway's own body carried (kept, not rejected). ``params`` and the
``/stream/params`` body are flat objects: ``width`` and ``height`` only together and positive, ``max_framerate``
1..60, ``detect_out_resolution`` a boolean; integer strings are accepted as pytrickle accepts them, and any
other key passes through to the processor untouched.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

URL_FIELDS = ("subscribe_url", "publish_url", "control_url", "events_url", "data_url")


class StreamParams(BaseModel):
    """Stream parameters; unknown keys are kept for the processor."""

    model_config = ConfigDict(extra="allow")

    width: Annotated[int, Field(gt=0, le=8192)] | None = None
    height: Annotated[int, Field(gt=0, le=8192)] | None = None
    max_framerate: Annotated[int, Field(ge=1, le=60)] | None = None
    detect_out_resolution: bool | None = None

    @field_validator("width", "height", "max_framerate", mode="before")
    @classmethod
    def _reject_bool(cls, value: Any) -> Any:
        # pydantic would read True as 1; a boolean width is a client bug, not a size.
        if isinstance(value, bool):
            raise ValueError("must be an integer")
        return value

    @model_validator(mode="after")
    def _width_and_height_together(self) -> StreamParams:
        if (self.width is None) != (self.height is None):
            raise ValueError("width and height must be given together")
        return self

    def as_dict(self) -> dict[str, Any]:
        """The params as given, with known fields converted to their types."""
        return self.model_dump(exclude_unset=True)


class StreamStartRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    # pytrickle takes any string, "" included (ai-runner-style callers send ""): the stream id then comes from
    # X-Stream-Id.
    gateway_request_id: Annotated[str, Field(max_length=512)]
    subscribe_url: str | None = None
    publish_url: str | None = None
    control_url: str | None = None
    events_url: str | None = None
    data_url: str | None = None
    params: StreamParams = Field(default_factory=StreamParams)

    @field_validator("params", mode="before")
    @classmethod
    def _null_params(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("subscribe_url", "publish_url", "control_url", "events_url", "data_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value

    _reported: dict[str, str] | None = PrivateAttr(default=None)

    def report_urls_as(self, urls: dict[str, str]) -> None:
        """Report these in heartbeats instead of the URLs the worker uses (Live Runner: the runner reads the
        orchestrator's internal URLs, which its events, read by the client, must not reveal)."""
        self._reported = dict(urls)

    def reported_urls(self) -> dict[str, str]:
        return dict(self._reported) if self._reported is not None else self.urls()

    def url_fields(self) -> dict[str, str | None]:
        """The channel URLs by field name, as the worker opens them."""
        return {name: getattr(self, name) for name in URL_FIELDS}

    def urls(self) -> dict[str, str]:
        """The trickle URLs in the shape pytrickle's heartbeat reports them."""
        return {
            "subscribe": self.subscribe_url or "",
            "publish": self.publish_url or "",
            "control": self.control_url or "",
            "events": self.events_url or "",
            "data": self.data_url or "",
        }


# Params are flat; processors get nested values, but nothing a client needs goes this deep. A limit keeps
# validation, echoes in events and json.dumps far from Python's recursion limit.
MAX_JSON_DEPTH = 32


def nesting_depth(value: Any) -> int:
    """How deeply lists and objects nest in a parsed JSON value (a scalar is 0); iterative, so any depth works."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def output_size_refusal(params: dict[str, Any], max_pixels: int) -> str | None:
    """Why the output size ``params`` ask for is too large for this worker, or None."""
    width, height = params.get("width"), params.get("height")
    if isinstance(width, int) and isinstance(height, int) and width * height > max_pixels:
        return f"params width x height ({width}x{height}) is over this worker's maximum of {max_pixels} pixels"
    return None


def field_errors(error: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as ``{"field": "params.width", "message": ...}`` for a JSON error reply."""
    out = []
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"]) or "body"
        message = item["msg"].removeprefix("Value error, ")
        out.append({"field": field, "message": message})
    return out
