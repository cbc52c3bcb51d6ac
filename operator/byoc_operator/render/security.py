"""Security contexts: containers run without privilege escalation and without Linux capabilities, pods with
seccomp RuntimeDefault.

The images we ship (runtime, router, registrar) run as the non-root user 65532 their Dockerfiles create, named
in their own securityContext so a pod-level runAsUser cannot change it. A user image may need root, so its
container keeps the image's user unless its securityContext says otherwise. What a BYOCWorker sets is merged
field by field over these defaults (what it may set at all is `pod_policy.py`'s to say).
"""

from __future__ import annotations

from typing import Any

from byoc_operator import api

SHIPPED_USER = 65532
DEFAULT_POD_SECURITY_CONTEXT: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
# The pod securityContext of router pods: every container in them is one we ship.
ROUTER_POD_SECURITY_CONTEXT: dict[str, Any] = {"runAsNonRoot": True, **DEFAULT_POD_SECURITY_CONTEXT}

# The NVIDIA container runtime shows a container every GPU of its node when NVIDIA_VISIBLE_DEVICES says "all"
# (the runtime image's CUDA base sets it so); the device plugin replaces it only in containers allocated GPUs.
# Every other container the operator renders says "void": it sees none.
NO_GPUS_ENV: dict[str, str] = {"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"}


def hardened(read_only_root: bool = False) -> dict[str, Any]:
    """The container securityContext of every container whose image we ship."""
    out: dict[str, Any] = {
        "runAsNonRoot": True,
        "runAsUser": SHIPPED_USER,
        "runAsGroup": SHIPPED_USER,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    if read_only_root:
        out["readOnlyRootFilesystem"] = True
    return out


def user_container(override: api.ContainerSecurityContext | None) -> dict[str, Any]:
    """A user image: no escalation, no capabilities, unless the BYOCWorker says otherwise field by field
    (added capabilities keep the default drop of ALL unless it names its own drop list)."""
    given = override.model_dump(by_alias=True, exclude_none=True) if override else {}
    capabilities = {"drop": ["ALL"], **given.pop("capabilities", {})}
    return {"allowPrivilegeEscalation": False, **given, "capabilities": capabilities}


def pod(override: api.PodSecurityContext | None) -> dict[str, Any]:
    """The worker pod's: seccomp RuntimeDefault stays unless the BYOCWorker names another profile."""
    given = override.model_dump(by_alias=True, exclude_none=True) if override else {}
    return {**DEFAULT_POD_SECURITY_CONTEXT, **given}
