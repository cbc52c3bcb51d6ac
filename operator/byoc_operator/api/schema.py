"""What every model of the API shares: group and kinds, patterns, CEL rule builders, the camelCase base model."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "byoc.livepeer.org"
VERSION = "v1alpha1"
KIND = "BYOCWorker"
PLURAL = "byocworkers"
SINGULAR = "byocworker"
SHORT_NAMES = ["bw", "byoc"]
CATEGORIES = ["livepeer", "byoc"]

# BYOCOrchestrator: an orchestrator the cluster administrator offers to namespaces (cluster-scoped).
ORCHESTRATOR_KIND = "BYOCOrchestrator"
ORCHESTRATOR_PLURAL = "byocorchestrators"
ORCHESTRATOR_SINGULAR = "byocorchestrator"
ORCHESTRATOR_SHORT_NAMES = ["borch"]

DEFAULT_CAPABILITY = "live-video-to-video"
DEFAULT_PORT = 8000

# Processors bundled with the runtime image. Kept in step with the runtime's registry by a test
# (the operator cannot import the runtime: it must not pull torch).
BUILTIN_PROCESSORS = ["passthrough", "grayscale", "green-tint", "cartoon", "whisper"]

# An image reference: [registry[:port]/]path[:tag][@digest], lower-case path as the distribution spec says.
IMAGE_PATTERN = (
    r"^(([a-zA-Z0-9.-]+(:[0-9]+)?)/)?[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)
# A DNS-1123 label, used for capability names (they appear in URLs and metrics labels).
CAPABILITY_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
PROCESSOR_CLASS_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
MIG_PROFILE_PATTERN = r"^[1-9]g\.[0-9]+gb(\+me)?$"
# An http(s) base URL without user info, query or fragment: the operator joins paths to it (orchestrator.endpoint),
# and a '?' or '#' would turn them into a query or fragment that is never sent (another path on the same host).
URL_PATTERN = r"^https?://[^\s/?#@]+(/[^\s?#]*)?$"
ORIGIN_PATTERN = r"^https?://[^\s/?#@]+$"

# Pod label keys the operator's selectors and NetworkPolicy peers match on (a tenant's pod carrying them could
# pass for a router or the operator), and annotation keys that opt a pod out of the cluster's mesh or confinement.
RESERVED_LABEL_PREFIXES = [f"{GROUP}/", "app.kubernetes.io/"]
RESERVED_ANNOTATION_PREFIXES = [
    f"{GROUP}/",
    "controller.kubernetes.io/",
    "sidecar.istio.io/",
    "proxy.istio.io/",
    "traffic.sidecar.istio.io/",
    "linkerd.io/",
    "config.linkerd.io/",
    "config.alpha.linkerd.io/",
    "container.apparmor.security.beta.kubernetes.io/",
    "seccomp.security.alpha.kubernetes.io/",
]


def rule(expression: str, message: str) -> dict[str, str]:
    """A CEL validation rule as the API server wants it (x-kubernetes-validations)."""
    return {"rule": expression, "message": message}


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


def checked(*rules: dict[str, str]) -> ConfigDict:
    """A model whose object carries CEL rules."""
    return ConfigDict(json_schema_extra=validations(*rules))


URL_MESSAGE = "must be an http(s) URL without user info, query or fragment, e.g. 'https://orch-0.example:8935'"


def checked_url(value: str) -> str:
    """The same check in code, for URLs the API server has not seen (fleet Secrets) and for clear pydantic errors."""
    if not re.fullmatch(URL_PATTERN, value):
        raise ValueError(URL_MESSAGE)
    return value


# Security review M7: an orchestrator secret only travels over https (go-livepeer orchestrators always serve it,
# with a self-signed certificate by default), unless whoever wrote the entry opted out in so many words.
PLAINTEXT_SECRET_MESSAGE = (
    "url must be https:// when secretRef is set: the orchestrator secret would travel in plaintext "
    "(go-livepeer orchestrators serve https; set tls.allowPlaintext: true to send it over http anyway)"
)
HTTPS_FOR_SECRETS = rule(
    "!has(self.secretRef) || self.url.startsWith('https://') || "
    "(has(self.tls) && has(self.tls.allowPlaintext) && self.tls.allowPlaintext)",
    PLAINTEXT_SECRET_MESSAGE,
)


def secret_may_travel(url: str, allow_plaintext: bool) -> bool:
    """HTTPS_FOR_SECRETS in code, for orchestrators the API server has not checked (fleet Secrets) and objects
    stored before the rule."""
    return url.startswith("https://") or allow_plaintext


def url_field(description: str, default: Any = ...) -> Any:
    """A base URL field: the API server checks it with a CEL rule (a user-readable message), pydantic with
    `checked_url` (BaseURL)."""
    return Field(
        default=default,
        max_length=2048,
        description=description,
        json_schema_extra=validations(rule(f"self.matches(r'{URL_PATTERN}')", URL_MESSAGE)),
    )


BaseURL = Annotated[str, AfterValidator(checked_url)]
ORIGIN_MESSAGE = "channelOrigins entries must be origins: scheme://host[:port], no path, user info, query or fragment"


def checked_origin(value: str) -> str:
    if not re.fullmatch(ORIGIN_PATTERN, value):
        raise ValueError(ORIGIN_MESSAGE)
    return value


Origin = Annotated[str, AfterValidator(checked_origin)]


def channel_origins_field() -> Any:
    return Field(
        default_factory=list,
        max_length=8,
        description="Origins (scheme://host[:port]) of the trickle channels and Live Runner callbacks this "
        "orchestrator hands workers, where they are not on url's own origin (its trickle server published on another "
        "address). Workers open channel URLs on url's origin and these only.",
        json_schema_extra={
            "items": {
                "type": "string",
                "maxLength": 512,
                **validations(rule(f"self.matches(r'{ORIGIN_PATTERN}')", ORIGIN_MESSAGE)),
            }
        },
    )


def image_rule(field: str) -> dict[str, str]:
    return rule(
        f"self.matches(r'{IMAGE_PATTERN}')",
        f"{field} is not a valid image reference: expected something like 'ghcr.io/acme/worker:1.2' "
        "(repository in lower case, optional :tag and @sha256:digest)",
    )


class Model(BaseModel):
    """Kubernetes style: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def free_form(description: str) -> Any:
    """A field whose content Kubernetes itself defines (EnvVar, Toleration, Affinity...): kept as given."""
    return Field(
        default=None,
        description=description,
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
