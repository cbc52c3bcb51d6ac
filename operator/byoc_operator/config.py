"""The operator's settings: environment variables (the chart sets them, see its deployment template), read once at
start-up into one validated value that is handed to the handlers and the reconciler. A bad value stops the operator
before it touches the cluster, naming the variable; nothing else reads the environment."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from byoc_operator import api, registration
from byoc_operator.pod_policy import PodPolicy

DEFAULT_RUNTIME_IMAGE = "ghcr.io/livepeer-byoc/byoc-runtime:0.1.0"
DEFAULT_EDGE_IMAGE = "ghcr.io/livepeer-byoc/byoc-edge:0.1.0"

# A Kubernetes quantity as a memory size is written ('16Gi', '512M', '1e9').
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?([eE][0-9]+|[KMGTPE]i|[kKMGTPE]|m)?$"


def _image(value: str) -> str:
    if not re.fullmatch(api.IMAGE_PATTERN, value):
        raise ValueError("not an image reference, expected something like 'ghcr.io/acme/byoc-runtime:1.2'")
    return value


Image = Annotated[str, AfterValidator(_image)]

# Setting -> environment variable. The pod policy's are under `policy.`.
VARIABLES = {
    "runtime_image": "BYOC_RUNTIME_IMAGE",
    "edge_image": "BYOC_EDGE_IMAGE",
    "resync_seconds": "BYOC_RESYNC_SECONDS",
    "reconcile_concurrency": "BYOC_RECONCILE_CONCURRENCY",
    "watch_timeout_seconds": "BYOC_WATCH_TIMEOUT",
    "token_propagation_seconds": "BYOC_TOKEN_PROPAGATION_SECONDS",
    "operator_namespace": "BYOC_OPERATOR_NAMESPACE",
    "allow_namespace_orchestrators": "BYOC_ALLOW_NAMESPACE_ORCHESTRATORS",
}
POLICY_VARIABLES = {
    "allow_privileged": "BYOC_ALLOW_PRIVILEGED",
    "allow_root": "BYOC_ALLOW_ROOT",
    "allowed_capabilities": "BYOC_ALLOWED_CAPABILITIES",
    "allowed_priority_classes": "BYOC_ALLOWED_PRIORITY_CLASSES",
    "allowed_runtime_classes": "BYOC_ALLOWED_RUNTIME_CLASSES",
    "default_memory_limit": "BYOC_DEFAULT_MEMORY_LIMIT",
    "default_memory_request": "BYOC_DEFAULT_MEMORY_REQUEST",
    "operator_namespace": "BYOC_OPERATOR_NAMESPACE",
    "operator_instance": "BYOC_OPERATOR_INSTANCE",
}
# Comma-separated lists; capabilities are compared in upper case.
LISTS = {"allowed_capabilities", "allowed_priority_classes", "allowed_runtime_classes"}
# Where an empty value means something ('' memory limit: none), rather than "unset".
EMPTY_MEANS_NONE = {"default_memory_limit", "default_memory_request", "operator_namespace", "operator_instance"}


class ConfigError(ValueError):
    """A setting the operator cannot run with; the message names the environment variable."""


class OperatorConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    runtime_image: Image = DEFAULT_RUNTIME_IMAGE
    # The torch-free image of routers and sidecars (Dockerfile.edge).
    edge_image: Image = DEFAULT_EDGE_IMAGE
    resync_seconds: float = Field(default=600.0, gt=0)
    reconcile_concurrency: int = Field(default=32, ge=1, le=1024)
    watch_timeout_seconds: int = Field(default=300, ge=1)
    token_propagation_seconds: float = Field(default=registration.TOKEN_PROPAGATION_SECONDS, ge=0)
    # Where BYOCOrchestrators' Secrets are (None: unknown, so none can be used).
    operator_namespace: str | None = None
    # Whether a namespace may bring its own orchestrators (spec.orchestrators, labelled fleet Secrets).
    allow_namespace_orchestrators: bool = False
    policy: PodPolicy = Field(default_factory=PodPolicy)

    @model_validator(mode="after")
    def _quantities(self) -> OperatorConfig:
        for name in ("default_memory_limit", "default_memory_request"):
            value = getattr(self.policy, name)
            if value and not re.fullmatch(QUANTITY_PATTERN, value):
                raise ValueError(f"{POLICY_VARIABLES[name]}={value!r}: not a memory quantity such as '16Gi'")
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OperatorConfig:
        """The settings from these variables (unset ones keep their defaults); ConfigError names a bad one."""
        raw: dict[str, Any] = {}
        for name, variable in VARIABLES.items():
            value = env.get(variable, "").strip()
            if value:
                raw[name] = value
        policy: dict[str, Any] = {}
        for name, variable in POLICY_VARIABLES.items():
            if variable not in env:
                continue
            value = env[variable].strip()
            if name in LISTS:
                items = [part.strip() for part in value.split(",") if part.strip()]
                policy[name] = [i.upper() for i in items] if name == "allowed_capabilities" else items
            elif value or name in EMPTY_MEANS_NONE:
                policy[name] = value
        raw["policy"] = policy
        try:
            return cls.model_validate(raw)
        except pydantic.ValidationError as exc:
            raise ConfigError(config_error_message(exc, env)) from None


def config_error_message(error: pydantic.ValidationError, env: Mapping[str, str]) -> str:
    parts = []
    for e in error.errors(include_url=False):
        loc = [str(p) for p in e["loc"]]
        in_policy = loc[:1] == ["policy"] and len(loc) > 1
        variable = POLICY_VARIABLES.get(loc[1]) if in_policy else VARIABLES.get(loc[0]) if loc else None
        message = e["msg"].removeprefix("Value error, ")
        if variable is None:
            parts.append(message)
        elif variable in env:  # not an edge image derived from a bad runtime image: that one is reported
            parts.append(f"{variable}={env[variable]!r}: {message}")
    return "invalid operator settings: " + "; ".join(parts)
