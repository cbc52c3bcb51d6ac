"""Router configuration: flags, each with a ``BYOC_ROUTER_*`` environment fallback, validated by pydantic."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..settings import Flags, gather
from ..settings import build_parser as build_parser_for
from .pods import CombinedPods, DnsPods, FilePods, PodSource, StaticPods, parse_pod_list

ENV_PREFIX = "BYOC_ROUTER_"
Seconds = Annotated[float, Field(gt=0)]


class RouterConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str = "0.0.0.0"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    pods: tuple[str, ...] = ()
    pods_file: Path | None = None
    pods_dns: str | None = None
    pod_port: Annotated[int, Field(ge=1, le=65535)] = 8000
    pod_scheme: Literal["http", "https"] = "http"
    sessions_per_pod: Annotated[int, Field(ge=1, le=64)] = 1
    # Name of the environment variable holding the bearer token (the capability's registered token).
    token_env: str = "BYOC_TOKEN"
    token: str | None = None
    # A file holding the token (a mounted Secret), re-read when it changes; wins over the variable.
    token_file: Path | None = None
    refresh_interval: Seconds = 5.0
    status_interval: Seconds = 5.0
    status_timeout: Seconds = 2.0
    start_timeout: Seconds = 30.0
    request_timeout: Seconds = 15.0
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"

    @field_validator("pods", mode="before")
    @classmethod
    def _split_pods(cls, value: Any) -> Any:
        return tuple(value.replace(",", " ").split()) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _pod_source(self) -> RouterConfig:
        if not (self.pods or self.pods_file or self.pods_dns):
            raise ValueError("no pod source: give --pods, --pods-file or --pods-dns")
        parse_pod_list(" ".join(self.pods), self.pod_port, self.pod_scheme)  # fails early on a bad URL
        return self

    def pod_source(self) -> PodSource:
        sources: list[PodSource] = []
        if self.pods:
            sources.append(StaticPods(parse_pod_list(" ".join(self.pods), self.pod_port, self.pod_scheme)))
        if self.pods_file:
            sources.append(FilePods(self.pods_file, self.pod_port, self.pod_scheme))
        if self.pods_dns:
            sources.append(DnsPods(self.pods_dns, self.pod_port, self.pod_scheme))
        return sources[0] if len(sources) == 1 else CombinedPods(sources)


# flag -> (argparse type, help). Every flag also reads BYOC_ROUTER_<FLAG>.
_FLAGS: Flags = {
    "host": (str, "address to listen on"),
    "port": (int, "port to listen on (the URL registered with orchestrators points here)"),
    "pods": (str, "worker pod URLs, comma separated (host, host:port or http://host:port)"),
    "pods-file": (Path, "file of worker pod URLs, re-read every refresh interval"),
    "pods-dns": (str, "headless Service name (NAME or NAME:PORT): every A record is a pod"),
    "pod-port": (int, "worker port when a pod address has none"),
    "pod-scheme": (str, "http or https towards pods"),
    "sessions-per-pod": (int, "stream slots per pod (a pod reporting fewer is taken at its word)"),
    "token-env": (str, "environment variable holding the bearer token; unset or empty: no auth"),
    "token-file": (Path, "file holding the bearer token (a mounted Secret), re-read when it changes"),
    "refresh-interval": (float, "seconds between re-reads of the pod source"),
    "status-interval": (float, "seconds between polls of every pod's /stream/status"),
    "status-timeout": (float, "seconds a pod status poll may take"),
    "start-timeout": (float, "seconds a forwarded /stream/start may take (pods may wait for their model)"),
    "request-timeout": (float, "seconds other forwarded requests may take"),
    "log-level": (str, "DEBUG, INFO, WARNING, ERROR"),
    "log-format": (str, "json (one object per line) or text"),
}


def build_parser() -> argparse.ArgumentParser:
    return build_parser_for(
        "byoc-router",
        "Session router in front of BYOC worker pods. Every flag also reads BYOC_ROUTER_<FLAG>.",
        _FLAGS,
        ENV_PREFIX,
    )


def load_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> RouterConfig:
    """Flags, then ``BYOC_ROUTER_*`` variables, then defaults. Raises ``ValueError`` naming the bad setting."""
    env = os.environ if environ is None else environ
    values = gather(build_parser(), _FLAGS, ENV_PREFIX, argv, env, RouterConfig.model_fields["token_env"].default)
    try:
        return RouterConfig(**values)
    except ValidationError as exc:
        raise ValueError(f"invalid configuration: {exc}") from exc
