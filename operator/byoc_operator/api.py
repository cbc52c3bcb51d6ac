"""The BYOCWorker API (byoc.livepeer.org/v1alpha1), as pydantic models.

These models are the one source of truth for the resource: the CRD's OpenAPI schema (with its CEL rules)
is generated from them (see `crd.py`), and the operator parses every object it reconciles with them.
Field descriptions here are what `kubectl explain` shows, so they are written for users.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

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
                **validations(
                    rule(f"self.matches(r'{ORIGIN_PATTERN}')", ORIGIN_MESSAGE)
                ),
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


class Capability(Model):
    name: str = Field(
        default=DEFAULT_CAPABILITY,
        min_length=1,
        max_length=63,
        pattern=CAPABILITY_PATTERN,
        description="Capability name gateways route jobs by (registered with each orchestrator). "
        "Lower-case letters, digits and '-'.",
    )
    description: str = Field(default="", max_length=256, description="Human-readable description sent at registration.")


class RuntimeContainer(Model):
    """The bundled runtime image, running one of its processors or a PyTrickle-style processor class."""

    model_config = checked(
        rule(
            f"self.processor in {BUILTIN_PROCESSORS} || self.processor.matches(r'{PROCESSOR_CLASS_PATTERN}')",
            "runtime.processor must be a built-in processor (" + ", ".join(BUILTIN_PROCESSORS) + ") or "
            "a class reference like 'my_package.module:MyProcessor'",
        )
    )

    processor: str = Field(
        default="passthrough",
        min_length=1,
        max_length=253,
        description="Processor to run: a built-in name (" + ", ".join(BUILTIN_PROCESSORS) + ") or a "
        "PyTrickle-style processor class as 'package.module:Class' importable in the image.",
    )
    params: dict[str, Any] | None = Field(
        default=None,
        description="Initial processor parameters (JSON object), passed to load_model and update_params.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        json_schema_extra=validations(image_rule("runtime.image")),
        description="Override of the runtime image; defaults to the image the operator was installed with.",
    )


ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"


class EnvVar(Model):
    """A Kubernetes EnvVar."""

    name: str = Field(min_length=1, max_length=253, pattern=ENV_NAME_PATTERN, description="Variable name.")
    value: str | None = Field(default=None, description="Value.")
    value_from: dict[str, Any] | None = free_form(
        "Where the value comes from (Kubernetes EnvVarSource: fieldRef, resourceFieldRef, configMapKeyRef, "
        "secretKeyRef)."
    )


def localhost_profile_rule(field: str) -> dict[str, str]:
    return rule(
        "(self.type == 'Localhost') == has(self.localhostProfile)",
        f"{field}.localhostProfile is required with type Localhost, and only then",
    )


class SeccompProfile(Model):
    model_config = checked(localhost_profile_rule("seccompProfile"))

    type: Literal["RuntimeDefault", "Localhost", "Unconfined"] = Field(
        description="'RuntimeDefault' (the default), 'Localhost' (a profile installed on the node) or "
        "'Unconfined' (only where the operator's administrator allows privileged pods)."
    )
    localhost_profile: str | None = Field(default=None, max_length=4096, description="Localhost: the profile file.")


class AppArmorProfile(Model):
    model_config = checked(localhost_profile_rule("appArmorProfile"))

    type: Literal["RuntimeDefault", "Localhost", "Unconfined"] = Field(
        description="'RuntimeDefault', 'Localhost' or 'Unconfined' (only where privileged pods are allowed)."
    )
    localhost_profile: str | None = Field(default=None, max_length=4096, description="Localhost: the profile name.")


class Capabilities(Model):
    add: list[str] | None = Field(
        default=None,
        max_length=64,
        description="Capabilities to add (only those the operator's administrator allows).",
    )
    drop: list[str] | None = Field(default=None, max_length=64, description="Capabilities to drop (default: ALL).")


class ContainerSecurityContext(Model):
    """The parts of a container securityContext a BYOCWorker may set. Some values (privileged, escalation,
    added capabilities, Unconfined profiles, root) are refused unless the operator's administrator allows them."""

    allow_privilege_escalation: bool | None = Field(default=None, description="Default false.")
    privileged: bool | None = Field(default=None, description="Default false.")
    capabilities: Capabilities | None = Field(default=None, description="Default: drop ALL, add none.")
    read_only_root_filesystem: bool | None = Field(default=None, description="Mount the root filesystem read-only.")
    run_as_non_root: bool | None = Field(default=None, description="Refuse to start as root.")
    run_as_user: int | None = Field(default=None, ge=0, le=2147483647, description="User id (default: the image's).")
    run_as_group: int | None = Field(default=None, ge=0, le=2147483647, description="Group id.")
    seccomp_profile: SeccompProfile | None = Field(default=None, description="Default: the pod's (RuntimeDefault).")
    app_armor_profile: AppArmorProfile | None = Field(default=None, description="AppArmor profile.")


class PodSecurityContext(Model):
    """The parts of a pod securityContext a BYOCWorker may set (seccomp RuntimeDefault stays unless replaced)."""

    run_as_non_root: bool | None = Field(default=None, description="Refuse to start containers as root.")
    run_as_user: int | None = Field(default=None, ge=0, le=2147483647, description="User id of every container.")
    run_as_group: int | None = Field(default=None, ge=0, le=2147483647, description="Group id.")
    fs_group: int | None = Field(default=None, ge=0, le=2147483647, description="Group owning mounted volumes.")
    fs_group_change_policy: Literal["OnRootMismatch", "Always"] | None = Field(
        default=None, description="When volume ownership is changed to fsGroup."
    )
    supplemental_groups: list[int] | None = Field(default=None, max_length=64, description="Extra group ids.")
    seccomp_profile: SeccompProfile | None = Field(default=None, description="Default: RuntimeDefault.")
    app_armor_profile: AppArmorProfile | None = Field(default=None, description="AppArmor profile.")


class UserContainer(Model):
    """Any image that speaks the worker REST contract (PyTrickle's StreamServer or compatible)."""

    image: str = Field(
        min_length=1,
        max_length=512,
        json_schema_extra=validations(image_rule("container.image")),
        description="Worker image, e.g. 'ghcr.io/acme/worker:1.2'.",
    )
    command: list[str] | None = Field(default=None, description="Entrypoint override.")
    args: list[str] | None = Field(default=None, description="Arguments to the entrypoint.")
    env: list[EnvVar] | None = Field(default=None, max_length=256, description="Environment variables.")
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535, description="Port the worker REST API listens on.")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None, description="Image pull policy."
    )
    security_context: ContainerSecurityContext | None = Field(
        default=None,
        description="Container securityContext (default: no privilege escalation, all capabilities dropped; set "
        "runAsNonRoot/runAsUser here when your image allows). Fields you set replace the default's, the others "
        "stay.",
    )


class GPU(Model):
    model_config = checked(
        rule(
            "!has(self.migProfile) || self.count == 1",
            "gpu.migProfile gives each pod one MIG slice, so gpu.count must be 1 when migProfile is set",
        )
    )

    count: int = Field(default=1, ge=0, le=16, description="GPUs per pod (0 runs on CPU).")
    product: str | None = Field(
        default=None,
        max_length=128,
        description="Required GPU product, matched against the node label nvidia.com/gpu.product "
        "(e.g. 'NVIDIA-H100-80GB-HBM3').",
    )
    mig_profile: str | None = Field(
        default=None,
        pattern=MIG_PROFILE_PATTERN,
        description="Request a MIG slice instead of a whole GPU, e.g. '1g.10gb' (resource nvidia.com/mig-1g.10gb).",
    )
    resource_name: str = Field(
        default="nvidia.com/gpu",
        max_length=253,
        description="Extended resource for whole GPUs (change only for other device plugins).",
    )


class Scheduling(Model):
    node_selector: dict[str, str] | None = Field(default=None, description="Extra node labels the pods require.")
    tolerations: list[dict[str, Any]] | None = free_form(
        "Extra tolerations (the usual nvidia.com/gpu taint is tolerated automatically when GPUs are requested)."
    )
    affinity: dict[str, Any] | None = free_form("Pod affinity / anti-affinity / node affinity (Kubernetes Affinity).")
    runtime_class_name: str | None = Field(default=None, max_length=253, description="RuntimeClass, e.g. 'nvidia'.")
    priority_class_name: str | None = Field(
        default=None,
        max_length=253,
        description="PriorityClass of the worker pods, so GPU pods of a more important worker can preempt others.",
    )
    spread: Spread | None = Field(
        default=None, description="Spread the pods across nodes and/or GPU products (topology spread constraints)."
    )
    topology_spread_constraints: list[dict[str, Any]] | None = free_form(
        "Extra Kubernetes TopologySpreadConstraints, added after the ones spec.scheduling.spread renders "
        "(their labelSelector defaults to this worker's pods)."
    )


class Spread(Model):
    across_nodes: bool = Field(default=False, description="At most one pod more on any node than on another.")
    across_gpu_products: bool = Field(
        default=False,
        description="Balance the pods across GPU products (node label nvidia.com/gpu.product), so losing one "
        "kind of GPU does not take the whole worker down.",
    )
    when_unsatisfiable: Literal["ScheduleAnyway", "DoNotSchedule"] = Field(
        default="ScheduleAnyway",
        description="'ScheduleAnyway' (default: GPUs are scarce, a pod on a crowded node beats no pod) or "
        "'DoNotSchedule' (keep pods Pending rather than break the spread).",
    )


class Resources(Model):
    model_config = checked(
        rule(
            "(!has(self.requests) || self.requests.all(k, !k.startsWith('nvidia.com/'))) && "
            "(!has(self.limits) || self.limits.all(k, !k.startsWith('nvidia.com/')))",
            "request GPUs with spec.gpu (count, product, migProfile), not in spec.resources",
        )
    )

    requests: dict[str, int | str] | None = Field(
        default=None,
        description="CPU / memory requests. GPUs are requested through spec.gpu, not here.",
        json_schema_extra={"additionalProperties": {"x-kubernetes-int-or-string": True}},
    )
    limits: dict[str, int | str] | None = Field(
        default=None,
        description="CPU / memory limits. GPUs are requested through spec.gpu, not here.",
        json_schema_extra={"additionalProperties": {"x-kubernetes-int-or-string": True}},
    )


class Probes(Model):
    path: str = Field(
        default="/health",
        pattern=r"^/",
        description="Liveness path of the worker REST API (pytrickle's /health, 200 whenever it answers). Startup "
        "and readiness ask /ready instead, which says whether the pod can take work (model loaded, not ERROR): the "
        "bundled runtime's own, or for your image the sidecar's, which reads the status in your /health.",
    )
    startup_timeout_seconds: int = Field(
        default=1800,
        ge=10,
        le=86400,
        description="How long a pod may take to load its model before it is restarted (default 30 min).",
    )
    period_seconds: int = Field(default=10, ge=1, le=300, description="Probe period.")
    failure_threshold: int = Field(default=3, ge=1, le=100, description="Failures before not-ready / restart.")


class ModelCache(Model):
    claim_name: str = Field(min_length=1, max_length=253, description="PersistentVolumeClaim holding model weights.")
    mount_path: str = Field(default="/models", pattern=r"^/", description="Where the cache is mounted in the pod.")
    read_only: bool = Field(
        default=True,
        description="Mount the cache read-only (the default: the claim may be another workload's too). Set false "
        "for pods that fill the cache themselves.",
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


class OrchestratorTLS(Model):
    """Orchestrators serve HTTPS with a self-signed certificate by default: trust a CA bundle, or opt out."""

    model_config = checked(ONE_WAY_OF_TRUST)

    ca_bundle_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding PEM CA certificates to verify the orchestrator with."
    )
    insecure_skip_verify: bool = Field(
        default=False, description="Do not verify the orchestrator's certificate (self-signed, no CA at hand)."
    )


class OperatorSecretKeyRef(Model):
    name: str = Field(min_length=1, max_length=253, description="Secret in the operator's namespace.")
    key: str = Field(default="secret", min_length=1, max_length=253, description="Key in the Secret.")


class OrchestratorTrust(Model):
    """How the operator verifies a BYOCOrchestrator's certificate; for its calls to that orchestrator only."""

    model_config = checked(ONE_WAY_OF_TRUST)

    ca_bundle_secret_ref: OperatorSecretKeyRef | None = Field(
        default=None, description="Secret key (operator's namespace) holding PEM CA certificates to verify it with."
    )
    insecure_skip_verify: bool = Field(default=False, description="Do not verify the orchestrator's certificate.")


class NamespaceSelector(Model):
    match_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels a namespace must carry to use it; {} offers it to every namespace."
    )


class BYOCOrchestratorSpec(Model):
    url: BaseURL = url_field("Orchestrator base URL, e.g. 'https://orch-0.example:8935'.")
    cli_url: BaseURL | None = url_field(
        "Live Runner static mode: the orchestrator's CLI URL (-cliAddr), where runners are upserted. It must not be "
        "reachable by anything a tenant steers: only set it here, never in a BYOCWorker.",
        None,
    )
    secret_ref: OperatorSecretKeyRef | None = Field(
        default=None,
        description="Secret in the operator's namespace holding the orchestrator secret (-orchSecret). It is only "
        "ever sent to url. Required by BYOC workers; Live Runner static upserts carry no secret.",
    )
    tls: OrchestratorTrust | None = Field(default=None, description="How to trust the orchestrator's certificate.")
    channel_origins: list[Origin] = channel_origins_field()
    namespace_selector: NamespaceSelector = Field(
        description="Namespaces whose BYOCWorkers may register with it ({} : every namespace)."
    )


class BYOCOrchestrator(Model):
    """An orchestrator the cluster administrator offers to BYOCWorkers of the namespaces it selects."""

    api_version: str = f"{GROUP}/{VERSION}"
    kind: str = ORCHESTRATOR_KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: BYOCOrchestratorSpec

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


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


class Drain(Model):
    grace_period_seconds: int = Field(
        default=600,
        ge=0,
        le=86400,
        description="On scale-down, rollout or deletion, a pod stops taking sessions and lets live streams run "
        "this long before they are stopped (terminationGracePeriodSeconds is set a little above it).",
    )


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


class Autoscaling(Model):
    """The built-in autoscaler: replicas follow the share of session slots in use."""

    model_config = checked(
        rule(
            "self.minReplicas <= self.maxReplicas",
            "autoscaling.minReplicas must not be greater than autoscaling.maxReplicas",
        )
    )

    min_replicas: int = Field(default=1, ge=0, le=1000, description="Never fewer pods than this.")
    max_replicas: int = Field(ge=1, le=1000, description="Never more pods than this (GPUs it may take).")
    target_busy_percent: int = Field(
        default=70,
        ge=1,
        le=100,
        description="Share of session slots in use to aim for. Above it the worker scales up at once; below it, "
        "and only after scaleDownDelaySeconds, idle pods are removed.",
    )
    scale_down_delay_seconds: int = Field(
        default=300,
        ge=0,
        le=86400,
        description="How long demand must stay low before pods are removed (scale up is immediate).",
    )
    period_seconds: int = Field(default=15, ge=1, le=600, description="How often the pods' sessions are counted.")


class DisruptionBudget(Model):
    """A PodDisruptionBudget for the worker pods (voluntary evictions: node drains, cluster upgrades)."""

    model_config = checked(
        rule(
            "has(self.minAvailable) != has(self.maxUnavailable)",
            "disruptionBudget: set exactly one of minAvailable and maxUnavailable",
        )
    )

    min_available: int | str | None = Field(
        default=None,
        description="Pods that must stay up during voluntary evictions (a number or a percentage).",
        json_schema_extra={"x-kubernetes-int-or-string": True},
    )
    max_unavailable: int | str | None = Field(
        default=None,
        description="Pods that may be evicted at once (a number or a percentage).",
        json_schema_extra={"x-kubernetes-int-or-string": True},
    )


class NetworkPolicy(Model):
    """Who may reach the worker and router pods. On by default: a routed (BYOC) worker's pods take calls from its
    router and the operator only; the port that serves orchestrators or clients (the router's, or the pods' in Live
    Runner mode or without registration) is open to any source unless allowFrom names who; no other port is
    open (the sidecar's: the kubelet's probes and hooks are not subject to NetworkPolicies)."""

    enabled: bool = Field(default=True, description="Render the NetworkPolicies (false: none).")
    allow_from: list[dict[str, Any]] | None = free_form(
        "Kubernetes NetworkPolicyPeer objects that may reach the serving port: your orchestrators (ipBlock, or "
        "namespaceSelector/podSelector), or clients. When set, no one else may (besides the router and the "
        "operator)."
    )


class Rollout(Model):
    model_config = checked(
        rule(
            "!(has(self.maxSurge) && has(self.maxUnavailable) && string(self.maxSurge) in ['0', '0%'] "
            "&& string(self.maxUnavailable) in ['0', '0%'])",
            "rollout.maxSurge and rollout.maxUnavailable cannot both be 0: the rollout could never progress",
        )
    )

    max_surge: int | str = Field(
        default=0,
        description="Extra pods during a rollout. 0 by default: GPUs are scarce, so a rollout never needs spare ones.",
        json_schema_extra={"x-kubernetes-int-or-string": True},
    )
    max_unavailable: int | str = Field(
        default=1,
        description="Pods that may be down during a rollout (replaced one at a time by default).",
        json_schema_extra={"x-kubernetes-int-or-string": True},
    )


class BYOCWorkerSpec(Model):
    model_config = checked(
        rule(
            "!(has(self.gpu) && has(self.gpu.count) && self.gpu.count == 0 && !has(self.gpu.migProfile)) || "
            "!has(self.container) || !has(self.container.env) || "
            "self.container.env.all(e, !e.name.startsWith('NVIDIA_'))",
            "spec.container.env may not set NVIDIA_* variables unless the pods request GPUs (spec.gpu): they would "
            "make the node's GPUs visible to a pod that was allocated none",
        ),
        rule(
            "!(has(self.runtime) && has(self.container))",
            "set either spec.runtime (the bundled runtime) or spec.container (your own image), not both",
        ),
        rule(
            "!has(self.orchestrators) || self.orchestrators.all(o, has(o.secretRef)) || "
            "(has(self.registration) && has(self.registration.protocol) && "
            "self.registration.protocol == 'live-runner' && has(self.registration.liveRunnerMode) && "
            "self.registration.liveRunnerMode == 'static')",
            "every spec.orchestrators entry needs a secretRef (only Live Runner static mode can do without)",
        ),
        rule(
            "!has(self.orchestratorRefs) || !(has(self.registration) && has(self.registration.protocol) && "
            "self.registration.protocol == 'live-runner' && (!has(self.registration.liveRunnerMode) || "
            "self.registration.liveRunnerMode == 'dynamic'))",
            "spec.orchestratorRefs cannot be used in Live Runner dynamic mode (the pods would need the "
            "orchestrator secret): use BYOC or Live Runner static mode",
        ),
    )

    capability: Capability = Field(default_factory=Capability, description="What gateways route to this worker.")
    runtime: RuntimeContainer | None = Field(
        default=None, description="Run the bundled runtime with a processor (exclusive with container)."
    )
    container: UserContainer | None = Field(
        default=None,
        description="Run your own image speaking the worker REST contract (exclusive with runtime).",
    )
    replicas: int = Field(
        default=1,
        ge=0,
        le=1000,
        description="Worker pods. With spec.autoscaling the autoscaler sets this (through the scale subresource, "
        "as HPA or KEDA would).",
    )
    autoscaling: Autoscaling | None = Field(
        default=None,
        description="Scale on sessions in use. Leave unset to drive replicas yourself, or with HPA/KEDA "
        "through the scale subresource.",
    )
    sessions_per_pod: int = Field(default=1, ge=1, le=64, description="Concurrent streams one pod serves.")
    gpu: GPU = Field(default_factory=GPU, description="GPU request per pod.")
    scheduling: Scheduling | None = Field(default=None, description="Where pods may run.")
    resources: Resources | None = Field(default=None, description="CPU and memory per pod.")
    probes: Probes = Field(default_factory=Probes, description="Health probes (slow start by default).")
    model_cache: ModelCache | None = Field(default=None, description="A PVC with model weights, shared by the pods.")
    pricing: Pricing = Field(default_factory=Pricing, description="Price advertised to orchestrators.")
    orchestrators: list[OrchestratorRef] | None = Field(
        default=None,
        max_length=64,
        description="Orchestrators this namespace brings itself (URL and a Secret of this namespace), where the "
        "operator allows it (chart value orchestrators.allowNamespaceOrchestrators); else use orchestratorRefs.",
    )
    orchestrator_refs: list[OrchestratorSelection] | None = Field(
        default=None,
        max_length=16,
        description="BYOCOrchestrators (set up by the cluster administrator, offered to this namespace) to register "
        "with, by name or label selector. A new matching one is picked up at once.",
    )
    drain: Drain = Field(default_factory=lambda: Drain(), description="How pods leave without cutting live streams.")
    registration: Registration = Field(default_factory=Registration, description="How orchestrators learn of it.")
    rollout: Rollout = Field(default_factory=Rollout, description="Rolling-update limits.")
    disruption_budget: DisruptionBudget | None = Field(
        default=None, description="A PodDisruptionBudget for the worker pods."
    )
    network_policy: NetworkPolicy = Field(
        default_factory=NetworkPolicy,
        description="NetworkPolicies for the worker and router pods (on by default).",
    )
    pod_security_context: PodSecurityContext | None = Field(
        default=None,
        description="Pod securityContext (default: seccomp RuntimeDefault; the bundled runtime also runs as "
        "non-root 65532).",
    )
    image_pull_secrets: list[str] | None = Field(
        default=None,
        description="Secrets for pulling the worker image (each named once).",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    pod_labels: dict[str, str] | None = Field(
        default=None,
        max_length=64,
        description="Extra labels for the worker pods. Keys under byoc.livepeer.org/ and app.kubernetes.io/ are "
        "the operator's (its selectors and NetworkPolicies match them).",
        json_schema_extra=validations(
            rule(
                "self.all(k, " + " && ".join(f"!k.startsWith('{p}')" for p in RESERVED_LABEL_PREFIXES) + ")",
                "spec.podLabels may not use keys under " + ", ".join(RESERVED_LABEL_PREFIXES) + ": the operator's "
                "selectors and NetworkPolicies match them",
            )
        ),
    )
    pod_annotations: dict[str, str] | None = Field(
        default=None,
        max_length=64,
        description="Extra annotations for the worker pods. Service-mesh opt-outs, AppArmor/seccomp annotations "
        "and the operator's own keys are refused.",
        json_schema_extra=validations(
            rule(
                "self.all(k, " + " && ".join(f"!k.startsWith('{p}')" for p in RESERVED_ANNOTATION_PREFIXES) + ")",
                "spec.podAnnotations may not use keys under " + ", ".join(RESERVED_ANNOTATION_PREFIXES) + " (mesh "
                "injection, AppArmor and seccomp are the cluster's to decide, the rest are the operator's)",
            )
        ),
    )


class Condition(Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None


class OrchestratorStatus(Model):
    url: str
    registered: bool = False
    since: str | None = None
    capacity: int = 0
    runners: int | None = Field(default=None, description="Live Runner: this worker's pods the orchestrator lists.")
    last_error: str | None = None
    held_by: str | None = Field(
        default=None,
        description="BYOC: another BYOCWorker (namespace/name, created first) registers this capability name with "
        "this orchestrator, so this one is not registered there.",
    )


class BYOCWorkerStatus(Model):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    replicas: int = 0
    ready_replicas: int = 0
    available_replicas: int = 0
    updated_replicas: int = 0
    ready: str = Field(default="0/0", description="Ready pods / desired pods, for printing.")
    capacity: int = Field(default=0, description="Sessions the ready pods can take (ready pods x sessions per pod).")
    endpoint: str | None = Field(
        default=None,
        description="Where the worker is reached: the URL registered with orchestrators (BYOC), else the "
        "in-cluster URL of the worker Service.",
    )
    selector: str | None = Field(default=None, description="Label selector of the pods (scale subresource).")
    sessions: int | None = Field(
        default=None, description="Live sessions on the pods at the last count (autoscaling only)."
    )
    last_scale_time: str | None = Field(default=None, description="When the autoscaler last changed replicas.")
    orchestrators: list[OrchestratorStatus] | None = None


class BYOCWorker(Model):
    """A fleet of GPU pods serving one live-video capability to Livepeer orchestrators."""

    api_version: str = f"{GROUP}/{VERSION}"
    kind: str = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: BYOCWorkerSpec = Field(default_factory=BYOCWorkerSpec)
    status: BYOCWorkerStatus | None = None

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")
