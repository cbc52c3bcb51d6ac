"""Registrar configuration: flags, each with a ``BYOC_REGISTRAR_*`` environment fallback, validated by pydantic.

Kubernetes gives the pod's own address and name through the downward API (``POD_IP``, ``POD_NAME``): they
default ``--runner-url`` (``http://$POD_IP:<worker port>``) and ``--runner-id`` (``$POD_NAME``). Secrets come
from files (``--secret-file``, one for all orchestrators or one per ``--orchestrator`` in the same order) or,
without files, from the variable named by ``--secret-env`` (``ORCH_SECRET``). TLS is per orchestrator too
(``--orchestrator-tls``, paired the same way): one orchestrator's CA or ``insecure`` never applies to another.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socket
import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..liverunner import MODE_PERSISTENT, MODE_SINGLE_SHOT, RunnerAdvert, advert_errors
from .credentials import SecretSource

ENV_PREFIX = "BYOC_REGISTRAR_"
T = TypeVar("T")
Seconds = Annotated[float, Field(gt=0)]
HttpUrl = Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")]


SYSTEM_TRUST = "system"
INSECURE = "insecure"


class OrchestratorTLS(BaseModel):
    """How ONE orchestrator's certificate is checked: the system's trust store (the default), its own CA bundle
    alone, or not at all. Each orchestrator gets its own SSL context built from this (as the operator does)."""

    model_config = ConfigDict(frozen=True)

    ca_file: Path | None = None
    insecure_skip_verify: bool = False

    @model_validator(mode="after")
    def _one_rule(self) -> OrchestratorTLS:
        if self.insecure_skip_verify and self.ca_file is not None:
            raise ValueError("an orchestrator's TLS is either a CA file or insecure, not both")
        return self

    @classmethod
    def parse(cls, value: str) -> OrchestratorTLS:
        """``system``, ``insecure``, or the path of a PEM CA bundle."""
        value = value.strip()
        if not value:
            raise ValueError("empty --orchestrator-tls: give system, insecure or a CA file")
        if value == SYSTEM_TRUST:
            return cls()
        if value == INSECURE:
            return cls(insecure_skip_verify=True)
        return cls(ca_file=Path(value))

    def ssl_context(self) -> ssl.SSLContext:
        if self.insecure_skip_verify:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        if self.ca_file is not None:
            return ssl.create_default_context(cafile=str(self.ca_file))
        return ssl.create_default_context()


class OrchestratorTarget(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    url: HttpUrl
    secret: SecretSource
    tls: OrchestratorTLS = OrchestratorTLS()

    @field_validator("url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")


class RegistrarConfig(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    worker_url: HttpUrl = "http://127.0.0.1:8000"
    # Drain only: no orchestrators, no registration; /drain (the worker's preStop) waits until the worker is idle.
    drain_only: bool = False
    orchestrators: tuple[OrchestratorTarget, ...] = ()
    app: str = ""
    runner_url: str = ""
    runner_id: str = ""
    capacity: Annotated[int, Field(ge=0, le=1024)] = 0  # 0: what the worker's /health says, else 1
    mode: Literal["persistent", "single-shot"] = MODE_PERSISTENT
    label: str = ""
    runner_version: str = ""  # "": the worker's /version
    metadata: str = ""
    price_info: dict[str, Any] | None = None
    drain_seconds: Annotated[float, Field(ge=0)] = 600.0
    probe_interval: Seconds = 2.0
    unready_after: Annotated[int, Field(ge=1)] = 3
    request_timeout: Seconds = 5.0
    host: str = "0.0.0.0"
    port: Annotated[int, Field(ge=0, le=65535)] = 8090
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"

    @field_validator("mode", mode="before")
    @classmethod
    def _mode_alias(cls, value: Any) -> Any:
        return MODE_SINGLE_SHOT if value == "single_shot" else value

    @field_validator("price_info", mode="before")
    @classmethod
    def _json_price(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else None
        if value is not None and not isinstance(value, dict):
            raise ValueError("must be a JSON object")
        return value

    @model_validator(mode="after")
    def _advert_is_valid(self) -> RegistrarConfig:
        if self.drain_only:
            if self.orchestrators:
                raise ValueError("--drain-only registers nowhere: give no --orchestrator")
            return self
        if not self.orchestrators:
            raise ValueError("no orchestrator: give --orchestrator URL (or BYOC_REGISTRAR_ORCHESTRATORS)")
        problems = advert_errors(RunnerAdvert(self.app, self.runner_url, metadata=self.metadata, mode=self.mode))
        if problems:
            raise ValueError("; ".join(problems))
        return self


def default_runner_url(worker_url: str, pod_ip: str) -> str:
    """``http://POD_IP:<worker port>``: the address the orchestrator reaches this very pod at."""
    parts = urlsplit(worker_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = f"[{pod_ip}]" if isinstance(ipaddress.ip_address(pod_ip), ipaddress.IPv6Address) else pod_ip
    return f"{parts.scheme}://{host}:{port}"


def per_orchestrator(flag: str, values: Sequence[T], count: int, default: T) -> list[T]:
    """A setting for each of ``count`` orchestrators: none given (``default`` for all), one for all, or one each
    in the ``--orchestrator`` order."""
    if not values:
        return [default] * count
    if len(values) == 1:
        return [values[0]] * count
    if len(values) != count:
        raise ValueError(f"{len(values)} --{flag} for {count} --orchestrator: give one, or one each")
    return list(values)


def pair_secrets(
    urls: Sequence[str], files: Sequence[Path], env: str, environ: Mapping[str, str]
) -> list[SecretSource]:
    """One secret file for all orchestrators, one per orchestrator (same order), or none (the variable)."""
    paths: list[Path | None] = per_orchestrator("secret-file", list(files), len(urls), None)
    return [SecretSource(path, env, environ) for path in paths]


# flag -> (argparse type, help, repeatable). Every flag also reads BYOC_REGISTRAR_<FLAG>; repeatable ones take a
# comma-separated list there.
_FLAGS: dict[str, tuple[Any, str, bool]] = {
    "worker-url": (str, "the worker's REST API in this pod", False),
    "drain-only": (str, "true: register nowhere, only drain (the worker's preStop calls /drain)", False),
    "orchestrator": (str, "orchestrator base URL (repeat for several; the variable: comma-separated)", True),
    "secret-file": (Path, "file holding the orchestrator secret: one for all, or one per --orchestrator", True),
    "secret-env": (str, "variable holding the orchestrator secret when no --secret-file is given", False),
    "app": (
        str,
        "the app (capability) this runner serves, e.g. live-video-to-video/grayscale [or CAPABILITY_NAME]",
        False,
    ),
    "runner-url": (str, "URL orchestrators reach this pod's worker at (default http://$POD_IP:<worker port>)", False),
    "runner-id": (str, "runner id, stable for the pod (default $POD_NAME, else the host name)", False),
    "capacity": (int, "sessions this pod runs at once (0: the worker's /health capacity, else 1)", False),
    "mode": (str, "persistent (live video) or single-shot", False),
    "label": (str, "runner label", False),
    "runner-version": (str, "version advertised in discovery (default: the worker's /version)", False),
    "metadata": (str, "public text for discovery (<= 1024 bytes, no secrets)", False),
    "price-info": (str, 'JSON price_info for on-chain orchestrators, e.g. {"price": 3.5, "unit": "hour"}', False),
    "orchestrator-tls": (
        str,
        "orchestrator HTTPS: system (system trust, the default), insecure (no verification), or a PEM CA bundle "
        "trusted alone; one for all, or one per --orchestrator",
        True,
    ),
    "drain-seconds": (float, "on SIGTERM, wait this long at most for running sessions before unregistering", False),
    "probe-interval": (float, "seconds between reads of the worker's /health", False),
    "unready-after": (int, "failed /health reads in a row before the runner is reported unreachable", False),
    "request-timeout": (float, "seconds one HTTP request may take", False),
    "host": (str, "address of the registrar's own /health, /metrics, /drain", False),
    "port": (int, "port of the registrar's own /health, /metrics, /drain (0: none)", False),
    "log-level": (str, "DEBUG, INFO, WARNING, ERROR", False),
    "log-format": (str, "json (one object per line) or text", False),
}
_SWITCHES = ("drain-only",)  # --flag alone means true
_PLURAL_ENV = {"orchestrator": "ORCHESTRATORS", "secret-file": "SECRET_FILES"}


def _env_name(flag: str) -> str:
    return ENV_PREFIX + _PLURAL_ENV.get(flag, flag.upper().replace("-", "_"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="byoc-registrar",
        description="Registers this pod's worker as a Livepeer Live Runner with one or more orchestrators, "
        "heartbeats, and drains on SIGTERM. Every flag also reads BYOC_REGISTRAR_<FLAG>.",
    )
    for flag, (kind, text, repeat) in _FLAGS.items():
        if flag in _SWITCHES:
            parser.add_argument(
                f"--{flag}", nargs="?", const="true", default=None, help=f"{text} [env {_env_name(flag)}]"
            )
            continue
        action = "append" if repeat else "store"
        parser.add_argument(f"--{flag}", type=kind, action=action, default=None, help=f"{text} [env {_env_name(flag)}]")
    return parser


def _split(value: str) -> list[str]:
    return value.replace(",", " ").split()


def load_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> RegistrarConfig:
    """Flags, then ``BYOC_REGISTRAR_*`` variables, then defaults. Raises ``ValueError`` naming the bad setting."""
    env = os.environ if environ is None else environ
    args = vars(build_parser().parse_args(argv))
    raw: dict[str, Any] = {}
    for flag, (_, _, repeat) in _FLAGS.items():
        key = flag.replace("-", "_")
        if args.get(key) is not None:
            raw[key] = args[key]
        elif env.get(_env_name(flag)):
            raw[key] = _split(env[_env_name(flag)]) if repeat else env[_env_name(flag)]
    for switch in _SWITCHES:
        key = switch.replace("-", "_")
        if key in raw:
            raw[key] = str(raw[key]).strip().lower() in ("1", "true", "yes")
    urls = [str(u) for u in raw.pop("orchestrator", [])]
    if not urls and not raw.get("drain_only"):
        raise ValueError("no orchestrator: give --orchestrator URL (or BYOC_REGISTRAR_ORCHESTRATORS)")
    files = [Path(f) for f in raw.pop("secret_file", [])]
    secret_env = raw.pop("secret_env", "ORCH_SECRET")
    tls_values = [str(t) for t in raw.pop("orchestrator_tls", [])]
    values: dict[str, Any] = dict(raw)
    if "app" not in values and env.get("CAPABILITY_NAME"):
        values["app"] = env["CAPABILITY_NAME"]
    worker_url = str(values.get("worker_url") or RegistrarConfig.model_fields["worker_url"].default)
    try:
        if "runner_url" not in values and not values.get("drain_only"):
            if not env.get("POD_IP"):
                raise ValueError("no runner URL: give --runner-url, or set POD_IP (downward API status.podIP)")
            values["runner_url"] = default_runner_url(worker_url, env["POD_IP"])
        values.setdefault("runner_id", env.get("POD_NAME") or socket.gethostname())
        secrets = pair_secrets(urls, files, secret_env, env)
        parsed = [OrchestratorTLS.parse(t) for t in tls_values]
        trust = per_orchestrator("orchestrator-tls", parsed, len(urls), OrchestratorTLS())
        values["orchestrators"] = tuple(
            OrchestratorTarget(url=url, secret=secret, tls=tls)
            for url, secret, tls in zip(urls, secrets, trust, strict=True)
        )
        return RegistrarConfig(**values)
    except (ValidationError, json.JSONDecodeError, ValueError) as exc:
        raise ValueError(f"invalid configuration: {exc}") from exc
