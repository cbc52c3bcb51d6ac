"""The BYOCWorker resource: its spec (made of the parts in the sibling modules) and its status."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from byoc_operator.api.containers import Capability, PodSecurityContext, RuntimeContainer, UserContainer
from byoc_operator.api.placement import (
    GPU,
    Autoscaling,
    DisruptionBudget,
    Drain,
    ModelCache,
    NetworkPolicy,
    Probes,
    Resources,
    Rollout,
    Scheduling,
)
from byoc_operator.api.registration import OrchestratorRef, OrchestratorSelection, Pricing, Registration
from byoc_operator.api.schema import (
    GROUP,
    KIND,
    RESERVED_ANNOTATION_PREFIXES,
    RESERVED_LABEL_PREFIXES,
    VERSION,
    Model,
    checked,
    rule,
    validations,
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
