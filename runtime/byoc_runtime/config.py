"""Runtime configuration: command-line flags, each with a ``BYOC_*`` environment fallback.

The same image then runs anywhere by environment alone (``BYOC_PROCESSOR=grayscale BYOC_CAPACITY=2``), while
flags win for local runs. Validation is pydantic's, so a bad value fails at start with the setting named.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from byoc_edge.settings import Flags, gather
from byoc_edge.settings import build_parser as build_parser_for
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .origins import AllowedOrigins, OriginSource

ENV_PREFIX = "BYOC_"


class RuntimeConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str = "0.0.0.0"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    processor: str = "passthrough"
    params: dict[str, Any] = Field(default_factory=dict)
    capacity: Annotated[int, Field(ge=1, le=64)] = 1
    # Name of the environment variable holding the bearer token (what the orchestrator registration used).
    token_env: str = "BYOC_TOKEN"
    token: str | None = None
    # A file holding the token (a mounted Secret), re-read when it changes; wins over the variable.
    token_file: Path | None = None
    capability_name: str = ""
    pipeline: str = "byoc"
    heartbeat_interval: Annotated[float, Field(gt=0)] = 10.0
    gop_seconds: Annotated[float, Field(gt=0, le=10)] = 1.0
    max_framerate: Annotated[int, Field(ge=1, le=60)] = 24
    frame_device: Literal["auto", "cpu", "cuda"] = "auto"
    hw_codecs: Literal["auto", "off"] = "auto"
    processor_timeout: Annotated[float, Field(gt=0)] = 15.0
    start_wait: Annotated[float, Field(ge=0)] = 10.0
    # Grace for live streams once draining starts (preStop or SIGTERM); 0: SIGTERM stops them at once.
    drain_seconds: Annotated[float, Field(ge=0)] = 0.0
    scale_interpolation: str = "FAST_BILINEAR"
    x264_preset: str = "superfast"
    torch_threads: Annotated[int, Field(ge=0)] = 0
    log_level: str = "INFO"
    pytrickle_shim: Literal["auto", "always", "never"] = "auto"
    # Origins (scheme://host:port) the URLs of a start may be on (origins.py); empty: any (local use).
    allowed_origins: tuple[str, ...] = ()
    allowed_origins_file: Path | None = None  # more origins, one per line, re-read when it changes
    # Untrusted media: decoded input frames, one input segment and requested output frames are capped.
    max_input_pixels: Annotated[int, Field(ge=1)] = 4096 * 4096
    max_segment_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024 * 1024
    max_output_pixels: Annotated[int, Field(ge=1)] = 1920 * 1080

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        return tuple(value.replace(",", " ").split()) if isinstance(value, str) else value

    @field_validator("allowed_origins")
    @classmethod
    def _valid_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        AllowedOrigins.parse(value)
        return value

    def origins(self) -> OriginSource:
        return OriginSource(AllowedOrigins.parse(self.allowed_origins), self.allowed_origins_file)

    @field_validator("params", mode="before")
    @classmethod
    def _json_params(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        if not isinstance(value, dict):
            raise ValueError("must be a JSON object")
        return value


# flag -> (type for argparse, help). Every flag also reads BYOC_<FLAG> from the environment.
_FLAGS: Flags = {
    "host": (str, "address to listen on"),
    "port": (int, "port to listen on"),
    "processor": (str, "built-in name (passthrough, grayscale, green-tint, cartoon, whisper) or package.module:Class"),
    "params": (str, "JSON object: default stream params, also passed to load_model()"),
    "capacity": (int, "sessions this process runs at once (one processor instance each)"),
    "token-env": (str, "environment variable holding the bearer token required on /stream/* (unset: no auth)"),
    "token-file": (Path, "file holding that token (a mounted Secret), re-read when it changes; wins over token-env"),
    "capability-name": (str, "capability name reported by /version and /hardware/*"),
    "pipeline": (str, "pipeline name reported by /version"),
    "heartbeat-interval": (float, "seconds between heartbeat events"),
    "gop-seconds": (float, "seconds between output keyframes (= output segment length)"),
    "max-framerate": (int, "default cap on processed frames per second (params.max_framerate overrides)"),
    "frame-device": (str, "where processor tensors live: auto (CUDA when present), cpu, cuda"),
    "hw-codecs": (str, "auto: NVDEC/NVENC when a GPU has them; off: software only"),
    "processor-timeout": (float, "seconds a single processor call may take before the session is failed"),
    "start-wait": (float, "seconds /stream/start waits for model loading before answering 503"),
    "drain-seconds": (
        float,
        "once draining starts (GET /drain?wait=true, SIGTERM) live streams run this long before they are stopped",
    ),
    "scale-interpolation": (str, "swscale algorithm for input scaling (FAST_BILINEAR, BILINEAR, AREA, ...)"),
    "x264-preset": (str, "libx264 preset for output encoding"),
    "torch-threads": (int, "torch intra-op threads; 0: half the cores per session slot (media threads need the rest)"),
    "log-level": (str, "DEBUG, INFO, WARNING, ERROR"),
    "pytrickle-shim": (str, "map 'import pytrickle' to this runtime: auto (when pytrickle is absent), always, never"),
    "allowed-origins": (
        str,
        "comma-separated origins (scheme://host:port) that start requests' trickle and callback URLs must be on; "
        "empty: any",
    ),
    "allowed-origins-file": (Path, "file of more allowed origins, one per line, re-read when it changes"),
    "max-input-pixels": (int, "largest input frame (width x height) decoded; a larger one ends the stream"),
    "max-segment-bytes": (int, "largest input segment read; a larger one ends the stream"),
    "max-output-pixels": (int, "largest output frame (params width x height) a stream may ask for"),
}


def build_parser() -> argparse.ArgumentParser:
    return build_parser_for(
        "byoc-runtime",
        "Livepeer BYOC live-video worker (PyTrickle-compatible). Every flag also reads BYOC_<FLAG>.",
        _FLAGS,
        ENV_PREFIX,
    )


def load_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> RuntimeConfig:
    """Flags, then ``BYOC_*`` variables, then defaults. Raises ``ValueError`` naming the bad setting."""
    env = os.environ if environ is None else environ
    values = gather(build_parser(), _FLAGS, ENV_PREFIX, argv, env, RuntimeConfig.model_fields["token_env"].default)
    if "capability_name" not in values and env.get("CAPABILITY_NAME"):
        values["capability_name"] = env["CAPABILITY_NAME"]  # pytrickle's variable
    try:
        return RuntimeConfig(**values)
    except (ValidationError, json.JSONDecodeError) as exc:
        raise ValueError(f"invalid configuration: {exc}") from exc
