"""BYOCWorker: how orchestrators learn of the worker (registration, the orchestrators named, pricing)."""

from __future__ import annotations

import enum
from typing import Any, Literal

from pydantic import Field

from byoc_operator.api.schema import (
    HTTPS_FOR_SECRETS,
    BaseURL,
    Model,
    Origin,
    channel_origins_field,
    checked,
    rule,
    url_field,
)

# A positive decimal, as go-livepeer's LiveRunnerPriceInfo.priceRat reads price_info.price.
DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]+)?$"


class LiveRunnerPrice(Model):
    """The Live Runner ``price_info`` (go-livepeer ``ai/runner/live_runner.go`` ``LiveRunnerPriceInfo``), sent with
    every heartbeat and static entry. On-chain orchestrators refuse a runner without it (price required, a positive
    decimal, in USD); off-chain ones ignore it."""

    model_config = checked(
        rule(
            f"self.price.matches(r'{DECIMAL_PATTERN}') && double(self.price) > 0.0",
            "pricing.liveRunner.price must be a positive decimal number written as a string, e.g. '0.50'",
        )
    )

    price: str = Field(
        max_length=32,
        description="USD per unit, a positive decimal as a string (e.g. '0.50'): exact, as upstream parses it.",
    )
    currency: Literal["usd"] = Field(default="usd", description="Always 'usd': the only currency Live Runner takes.")
    unit: Literal["hour", "720p", "fixed"] = Field(
        default="hour",
        description="'hour' (USD per hour of a session), '720p' (per hour, scaled to 1280x720 pixels) or "
        "'fixed' (per session).",
    )


class Pricing(Model):
    price_per_unit: int = Field(
        default=0,
        ge=0,
        description="BYOC: the price per second of compute, in the currency below, is pricePerUnit / "
        "priceScaling (go-livepeer debits BYOC streams and jobs by the second). Live Runner uses "
        "pricing.liveRunner instead.",
    )
    price_scaling: int = Field(
        default=1, ge=1, description="BYOC: divides pricePerUnit, for prices below one unit of currency per second."
    )
    currency: Literal["", "wei", "WEI", "eth", "ETH"] = Field(
        default="",
        description="BYOC: '' or 'wei' (the default, and the unit of on-chain payments) or 'eth'. A fiat code "
        "cannot be used: an orchestrator without a price feed for it drops the registration call (it panics).",
    )
    live_runner: LiveRunnerPrice | None = Field(
        default=None,
        description="Live Runner: the price_info sent to orchestrators, in USD. Required by on-chain orchestrators.",
    )


class SecretKeyRef(Model):
    name: str = Field(min_length=1, max_length=253, description="Secret in the BYOCWorker's namespace.")
    key: str = Field(default="secret", min_length=1, max_length=253, description="Key in the Secret.")


class OrchestratorRef(Model):
    model_config = checked(HTTPS_FOR_SECRETS)

    url: BaseURL = url_field("Orchestrator base URL, e.g. 'https://orch-0.example:8935'.")
    secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret holding the orchestrator secret (-orchSecret). Required except for Live Runner "
        "static mode, whose upserts carry no authorisation.",
    )
    cli_url: BaseURL | None = url_field(
        "Live Runner static mode: the orchestrator's CLI URL (-cliAddr, e.g. 'http://orch-0:7935'), "
        "where runners are upserted through POST /registerLiveRunners.",
        None,
    )
    tls: OrchestratorTLS | None = Field(default=None, description="How to trust the orchestrator's certificate.")
    channel_origins: list[Origin] = channel_origins_field()


ONE_WAY_OF_TRUST = rule(
    "!(has(self.caBundleSecretRef) && has(self.insecureSkipVerify) && self.insecureSkipVerify)",
    "tls: set either caBundleSecretRef or insecureSkipVerify, not both",
)


def allow_plaintext_field() -> Any:
    return Field(
        default=False,
        description="Send the orchestrator secret to an http:// url, in plaintext: anyone on the path can read it. "
        "Only for an orchestrator without TLS (a test one); go-livepeer's serve https. The worker's "
        "InsecureTransport condition says so while it is set.",
    )


class OrchestratorTLS(Model):
    """Orchestrators serve HTTPS with a self-signed certificate by default: trust a CA bundle, or opt out."""

    model_config = checked(ONE_WAY_OF_TRUST)

    ca_bundle_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding PEM CA certificates to verify the orchestrator with."
    )
    insecure_skip_verify: bool = Field(
        default=False, description="Do not verify the orchestrator's certificate (self-signed, no CA at hand)."
    )
    allow_plaintext: bool = allow_plaintext_field()


class OrchestratorSelection(Model):
    """BYOCOrchestrators by name, or every one whose labels match."""

    model_config = checked(
        rule(
            "has(self.name) != has(self.selector)",
            "each spec.orchestratorRefs entry sets either name or selector",
        )
    )

    name: str | None = Field(default=None, min_length=1, max_length=253, description="A BYOCOrchestrator's name.")
    selector: LabelSelector | None = Field(default=None, description="Every BYOCOrchestrator carrying these labels.")


class LabelSelector(Model):
    match_labels: dict[str, str] = Field(description="Labels the selected objects must all carry.")


class Expose(Model):
    """How orchestrators reach the router (BYOC). They usually run outside the cluster and cannot resolve or
    route to in-cluster Service addresses."""

    model_config = checked(
        rule(
            "!has(self.type) || self.type != 'NodePort' || has(self.nodeAddress)",
            "registration.expose.nodeAddress is required with type NodePort: the address orchestrators reach "
            "your nodes at (Kubernetes does not say which node address is reachable from outside)",
        )
    )

    type: Literal["ClusterIP", "LoadBalancer", "NodePort"] = Field(
        default="ClusterIP",
        description="Type of the router Service. 'LoadBalancer': the address the cloud assigns (status."
        "loadBalancer) is registered once there is one. 'NodePort': nodeAddress plus the node port Kubernetes "
        "allocates. 'ClusterIP' (default): the in-cluster name is registered, which only orchestrators inside "
        "the cluster can reach (the Registered condition says so); put an Ingress in front and set advertiseUrl "
        "instead, or use a fixed advertiseUrl.",
    )
    node_address: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$",
        description="NodePort: the host name or IP orchestrators reach your nodes at.",
    )
    annotations: dict[str, str] | None = Field(
        default=None, description="Annotations for the router Service (for example a cloud load balancer's)."
    )
    load_balancer_source_ranges: list[str] | None = Field(
        default=None, description="LoadBalancer: CIDRs allowed to reach it (your orchestrators)."
    )


class RegistrationMode(enum.StrEnum):
    """The three ways a worker is announced, each with its own strategy in the operator (`modes/`)."""

    BYOC = "byoc"
    LIVE_RUNNER_DYNAMIC = "live-runner-dynamic"
    LIVE_RUNNER_STATIC = "live-runner-static"


class Registration(Model):
    """How the worker is announced to orchestrators (see protocols: BYOC capability registration or Live Runner)."""

    protocol: Literal["byoc", "live-runner"] = Field(
        default="byoc",
        description="'byoc': one router URL registered per capability with POST /capability/register. "
        "'live-runner': each pod registered as a runner (go-livepeer v0.9+).",
    )
    live_runner_mode: Literal["dynamic", "static"] = Field(
        default="dynamic",
        description="Live Runner only. 'dynamic': each pod heartbeats to the orchestrators. "
        "'static': a runners.json ConfigMap for orchestrators started with -liveRunnerConfig.",
    )
    orchestrator_selector: LabelSelector | None = Field(
        default=None,
        description="Also register with every orchestrator described by a Secret in this namespace carrying these "
        "labels (keys 'url' and 'secret', optional 'ca.crt'), so a fleet that grows or shrinks is picked up.",
    )
    advertise_url: BaseURL | None = url_field(
        "BYOC: the URL orchestrators reach the router at (an Ingress, a fixed address); wins over "
        "expose. Default: what expose gives.",
        None,
    )
    expose: Expose = Field(
        default_factory=Expose, description="BYOC: how the router is exposed, and so which URL is registered."
    )
    token_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="BYOC: a Secret key holding a token registered with the capability. Orchestrators send it "
        "back as 'Authorization: Bearer <token>', and the router and the pods refuse stream requests without it.",
    )
    refresh_seconds: int = Field(
        default=60,
        ge=5,
        le=3600,
        description="Re-register this often even when nothing changed (orchestrators "
        "have no health checks, so this is their only recovery).",
    )

    @property
    def mode(self) -> RegistrationMode:
        if self.protocol == "byoc":
            return RegistrationMode.BYOC
        if self.live_runner_mode == "static":
            return RegistrationMode.LIVE_RUNNER_STATIC
        return RegistrationMode.LIVE_RUNNER_DYNAMIC
