"""BYOCWorker: where and how many pods run, their health, their storage, and how they leave."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from byoc_operator.api.schema import MIG_PROFILE_PATTERN, Model, checked, free_form, rule


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


class Drain(Model):
    grace_period_seconds: int = Field(
        default=600,
        ge=0,
        le=86400,
        description="On scale-down, rollout or deletion, a pod stops taking sessions and lets live streams run "
        "this long before they are stopped (terminationGracePeriodSeconds is set a little above it).",
    )
