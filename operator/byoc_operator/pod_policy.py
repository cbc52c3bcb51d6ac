"""What a BYOCWorker's pods may ask for beyond the defaults, as the cluster administrator allows it.

A tenant who may create BYOCWorkers gets pods through the operator's own ServiceAccount, so RBAC on pods never
applies to them: the operator itself refuses what would let a pod leave its sandbox (privileged, escalation,
added capabilities, Unconfined seccomp/AppArmor, root), preempt system pods or pick a runtime class, unless the
administrator allowed it with the chart's `security.*` values (environment variables of the operator, read by
`config.py`). Fields that no setting allows (host namespaces, hostPath, procMount, SELinux options, sysctls) are
not in the API at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from byoc_operator import api

# System priority classes preempt anything; Kubernetes lets any namespace use them unless a quota forbids it.
SYSTEM_PRIORITY_PREFIX = "system-"
# Host memory of a worker pod that names no memory limit: without one, a pod under load (large frames from a
# client, a leak) takes the node into memory pressure and the kubelet evicts other tenants' pods.
DEFAULT_MEMORY_LIMIT = "16Gi"
# What such a pod reserves on its node (without it Kubernetes would reserve the whole limit).
DEFAULT_MEMORY_REQUEST = "1Gi"


@dataclass(frozen=True)
class PodPolicy:
    # security.allowPrivileged: privileged, allowPrivilegeEscalation, Unconfined seccomp or AppArmor.
    allow_privileged: bool = False
    # security.allowRoot: runAsUser 0, runAsGroup 0 or runAsNonRoot false, in either securityContext.
    allow_root: bool = False
    # security.allowedCapabilities: Linux capabilities container.securityContext.capabilities.add may name.
    allowed_capabilities: frozenset[str] = frozenset()
    # security.allowedPriorityClasses: empty, any class but the system ones; else only these.
    allowed_priority_classes: frozenset[str] = frozenset()
    # security.allowedRuntimeClasses: runtimeClassName values allowed (none by default).
    allowed_runtime_classes: frozenset[str] = frozenset()
    # security.defaultMemoryLimit: the worker container's memory limit when spec.resources names none ('' = none).
    default_memory_limit: str = DEFAULT_MEMORY_LIMIT
    # security.defaultMemoryRequest: the memory request that goes with the default limit ('' = the limit).
    default_memory_request: str = DEFAULT_MEMORY_REQUEST
    # Who the workers' NetworkPolicies admit as the operator (it reads the pods' and routers' /health): pods of
    # this Helm release in this namespace (set by the chart; unset when the operator runs outside the cluster).
    operator_namespace: str = ""
    operator_instance: str = ""


def _not_allowed(field: str, what: str, setting: str) -> str:
    return (
        f"{field} {what} is not allowed on this cluster: the operator's administrator allows it with the chart "
        f"value {setting}"
    )


def _context_refusal(
    field: str, ctx: api.ContainerSecurityContext | api.PodSecurityContext | None, policy: PodPolicy
) -> str | None:
    if ctx is None:
        return None
    if not policy.allow_privileged:
        if getattr(ctx, "privileged", None):
            return _not_allowed(f"{field}.privileged", "true", "security.allowPrivileged")
        if getattr(ctx, "allow_privilege_escalation", None):
            return _not_allowed(f"{field}.allowPrivilegeEscalation", "true", "security.allowPrivileged")
        for name, profile in (("seccompProfile", ctx.seccomp_profile), ("appArmorProfile", ctx.app_armor_profile)):
            if profile is not None and profile.type == "Unconfined":
                return _not_allowed(f"{field}.{name}.type", "Unconfined", "security.allowPrivileged")
    if not policy.allow_root:
        if ctx.run_as_user == 0:
            return _not_allowed(f"{field}.runAsUser", "0 (root)", "security.allowRoot")
        if ctx.run_as_group == 0:
            return _not_allowed(f"{field}.runAsGroup", "0 (root)", "security.allowRoot")
        if ctx.run_as_non_root is False:
            return _not_allowed(f"{field}.runAsNonRoot", "false", "security.allowRoot")
    capabilities = getattr(ctx, "capabilities", None)
    for cap in (capabilities.add or []) if capabilities else []:
        if cap.upper().removeprefix("CAP_") not in policy.allowed_capabilities:
            return _not_allowed(f"{field}.capabilities.add", repr(cap), "security.allowedCapabilities")
    return None


def refusal(spec: api.BYOCWorkerSpec, policy: PodPolicy) -> str | None:
    """Why this spec's pods are not allowed here (naming the field and the setting), or None."""
    found = _context_refusal("spec.podSecurityContext", spec.pod_security_context, policy)
    if found is None and spec.container:
        found = _context_refusal("spec.container.securityContext", spec.container.security_context, policy)
    if found:
        return found
    scheduling = spec.scheduling or api.Scheduling()
    priority = scheduling.priority_class_name
    if priority:
        allowed = priority in policy.allowed_priority_classes or (
            not policy.allowed_priority_classes and not priority.startswith(SYSTEM_PRIORITY_PREFIX)
        )
        if not allowed:
            return _not_allowed("spec.scheduling.priorityClassName", repr(priority), "security.allowedPriorityClasses")
    runtime_class = scheduling.runtime_class_name
    if runtime_class and runtime_class not in policy.allowed_runtime_classes:
        return _not_allowed("spec.scheduling.runtimeClassName", repr(runtime_class), "security.allowedRuntimeClasses")
    return None
