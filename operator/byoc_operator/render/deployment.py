"""The worker Deployment: GPU pods running the bundled runtime or the user's image."""

from __future__ import annotations

import json
from typing import Any

from byoc_operator import api
from byoc_operator.render import security
from byoc_operator.render.origins import ORIGINS_ENV, ORIGINS_MOUNT, origins_volume, restricts_origins
from byoc_operator.render.placement import topology_spread
from byoc_operator.render.probes import probes
from byoc_operator.render.registrar import (
    TERMINATION_MARGIN_SECONDS,
    drain_hook,
    drain_sidecar,
    registrar_container,
    secret_volumes,
    uses_drain_sidecar,
    uses_registrar,
)
from byoc_operator.render.secret_files import secret_files, secret_files_env, secret_files_mount, secret_files_volume
from byoc_operator.render.token import token_volume, uses_token, with_token
from byoc_operator.render.worker import Worker

CONTAINER = "worker"
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
MODEL_CACHE_VOLUME = "model-cache"


def gpu_resources(gpu: api.GPU) -> dict[str, int]:
    """Extended resources for one pod. Only limits: Kubernetes copies them to requests."""
    if gpu.mig_profile:
        return {f"nvidia.com/mig-{gpu.mig_profile}": 1}
    if gpu.count > 0:
        return {gpu.resource_name: gpu.count}
    return {}


def needs_gpu(gpu: api.GPU) -> bool:
    return bool(gpu.mig_profile) or gpu.count > 0


def resources(worker: Worker) -> dict[str, Any]:
    spec = worker.spec
    requests = dict(spec.resources.requests or {}) if spec.resources else {}
    limits = dict(spec.resources.limits or {}) if spec.resources else {}
    policy = worker.policy
    if "memory" not in limits and (requests.get("memory") or policy.default_memory_limit):
        # No memory limit would let one pod take its node into memory pressure: the request, else the default,
        # with the default request (not the limit, as Kubernetes would take) when the spec names none.
        if "memory" in requests:
            limits["memory"] = requests["memory"]
        else:
            limits["memory"] = policy.default_memory_limit
            if policy.default_memory_request:
                requests["memory"] = policy.default_memory_request
    limits.update(gpu_resources(spec.gpu))
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


# Linux's MAX_ARG_STRLEN: one "NAME=value" of a process's environment, with its terminating NUL. The API server
# takes longer values, but the container runtime cannot start a process with one.
MAX_ENV_ENTRY_BYTES = 131072


def node_refusal(worker: Worker) -> str | None:
    """What a kubelet and container runtime would refuse in this worker's pods although the API server accepts
    it; None when nothing. The operator refuses such a spec itself (InvalidSpec) instead of leaving pods that
    can never start."""
    for env in container(worker).get("env") or []:
        value = env.get("value")
        if isinstance(value, str):
            size = len(f"{env.get('name', '')}={value}".encode()) + 1
            if size > MAX_ENV_ENTRY_BYTES:
                name = env.get("name")
                what = "spec.runtime.params" if name == "BYOC_PARAMS" else f"environment variable {name}"
                return (
                    f"{what} is {size} bytes as an environment entry; a Linux node cannot start a process with one "
                    f"over {MAX_ENV_ENTRY_BYTES} bytes (keep large settings in a file or the model cache)"
                )
    return None


def identity_env(worker: Worker) -> list[dict[str, Any]]:
    field = lambda path: {"valueFrom": {"fieldRef": {"fieldPath": path}}}  # noqa: E731
    return [
        {"name": "BYOC_WORKER", "value": worker.name},
        {"name": "BYOC_CAPABILITY", "value": worker.spec.capability.name},
        {"name": "POD_NAME", **field("metadata.name")},
        {"name": "POD_NAMESPACE", **field("metadata.namespace")},
        {"name": "POD_IP", **field("status.podIP")},
    ]


def container(worker: Worker) -> dict[str, Any]:
    spec = worker.spec
    out: dict[str, Any] = {"name": CONTAINER}
    if spec.container:
        user = spec.container
        out["image"] = user.image
        if user.image_pull_policy:
            out["imagePullPolicy"] = user.image_pull_policy
        if user.command:
            out["command"] = user.command
        if user.args:
            out["args"] = user.args
        # A user variable of the same name replaces ours (Kubernetes refuses duplicate names).
        theirs = [e.model_dump(by_alias=True, exclude_none=True) for e in user.env or []]
        mine = {e["name"] for e in theirs}
        env = [*(e for e in identity_env(worker) if e["name"] not in mine), *theirs]
        out["securityContext"] = security.user_container(user.security_context)
    else:
        runtime = spec.runtime or api.RuntimeContainer()
        out["image"] = runtime.image or worker.runtime_image
        env = [
            *identity_env(worker),
            {"name": "BYOC_PROCESSOR", "value": runtime.processor},
            {"name": "BYOC_PARAMS", "value": json.dumps(runtime.params or {}, sort_keys=True)},
            {"name": "BYOC_CAPACITY", "value": str(spec.sessions_per_pod)},
            {"name": "BYOC_PORT", "value": str(worker.port)},
            {"name": "BYOC_DRAIN_SECONDS", "value": str(spec.drain.grace_period_seconds)},
            *([ORIGINS_ENV] if restricts_origins(worker) else []),
            *([secret_files_env()] if secret_files(worker) else []),
        ]
        out["securityContext"] = security.hardened()
    if not needs_gpu(spec.gpu):
        env.append(security.NO_GPUS_ENV)
    out["env"] = env
    out["ports"] = [{"name": "http", "containerPort": worker.port, "protocol": "TCP"}]
    res = resources(worker)
    if res:
        out["resources"] = res
    out.update(probes(worker))
    mounts = [ORIGINS_MOUNT] if restricts_origins(worker) else []
    if secret_files(worker):
        mounts.append(secret_files_mount())
    if spec.model_cache:
        mounts.append(
            {
                "name": MODEL_CACHE_VOLUME,
                "mountPath": spec.model_cache.mount_path,
                "readOnly": spec.model_cache.read_only,
            }
        )
    if mounts:
        out["volumeMounts"] = mounts
    return out


def pod_spec(worker: Worker) -> dict[str, Any]:
    spec = worker.spec
    scheduling = spec.scheduling or api.Scheduling()
    containers = [with_token(worker, container(worker), "BYOC_")]
    containers[0]["lifecycle"] = drain_hook(worker)
    volumes = [token_volume(worker)] if uses_token(worker) else []
    if restricts_origins(worker):
        volumes.append(origins_volume(worker))
    if secret_files(worker):
        volumes.append(secret_files_volume(worker))
    if uses_registrar(worker):
        containers.append(registrar_container(worker))
        volumes += secret_volumes(worker)
    elif uses_drain_sidecar(worker):
        containers.append(drain_sidecar(worker))
    out: dict[str, Any] = {
        "containers": containers,
        "terminationGracePeriodSeconds": spec.drain.grace_period_seconds + TERMINATION_MARGIN_SECONDS,
        # Workers talk to orchestrators, not to the Kubernetes API.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": security.pod(spec.pod_security_context),
    }
    node_selector = dict(scheduling.node_selector or {})
    if spec.gpu.product:
        node_selector[GPU_PRODUCT_LABEL] = spec.gpu.product
    if node_selector:
        out["nodeSelector"] = node_selector
    tolerations = list(scheduling.tolerations or [])
    if needs_gpu(spec.gpu):
        tolerations.insert(0, {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"})
    if tolerations:
        out["tolerations"] = tolerations
    if scheduling.affinity:
        out["affinity"] = scheduling.affinity
    spread = topology_spread(worker)
    if spread:
        out["topologySpreadConstraints"] = spread
    if scheduling.runtime_class_name:
        out["runtimeClassName"] = scheduling.runtime_class_name
    if scheduling.priority_class_name:
        out["priorityClassName"] = scheduling.priority_class_name
    if spec.image_pull_secrets:
        out["imagePullSecrets"] = [{"name": name} for name in spec.image_pull_secrets]
    if spec.model_cache:
        volumes.append(
            {
                "name": MODEL_CACHE_VOLUME,
                "persistentVolumeClaim": {
                    "claimName": spec.model_cache.claim_name,
                    "readOnly": spec.model_cache.read_only,
                },
            }
        )
    if volumes:
        out["volumes"] = volumes
    return out


def pod_metadata(worker: Worker) -> dict[str, Any]:
    out: dict[str, Any] = {"labels": {**(worker.spec.pod_labels or {}), **worker.labels}}
    if worker.spec.pod_annotations:
        out["annotations"] = dict(worker.spec.pod_annotations)
    return out


def render_deployment(worker: Worker) -> dict[str, Any]:
    spec = worker.spec
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": worker.metadata(worker.deployment_name),
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": worker.selector_labels},
            # maxSurge 0 by default: a rollout frees a GPU before it needs one.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {
                    "maxSurge": spec.rollout.max_surge,
                    "maxUnavailable": spec.rollout.max_unavailable,
                },
            },
            "revisionHistoryLimit": 3,
            # A rollout only counts as stuck once model loading had its full startup budget.
            "progressDeadlineSeconds": spec.probes.startup_timeout_seconds + 600,
            "template": {"metadata": pod_metadata(worker), "spec": pod_spec(worker)},
        },
    }
