"""Security contexts: containers run without privilege escalation and without Linux capabilities.

The images we ship (runtime, router, registrar) run as the non-root user 65532 their Dockerfiles create. A user
image may need root, so its container keeps the image's user unless its securityContext says otherwise.
"""

from __future__ import annotations

from typing import Any

# Seccomp is on for every worker pod; users may replace the whole pod securityContext.
DEFAULT_POD_SECURITY_CONTEXT: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}


def hardened(read_only_root: bool = False) -> dict[str, Any]:
    """The container securityContext of every container whose image we ship."""
    out: dict[str, Any] = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    if read_only_root:
        out["readOnlyRootFilesystem"] = True
    return out


def user_container(override: dict[str, Any] | None) -> dict[str, Any]:
    """A user image: no escalation, no capabilities, unless the BYOCWorker says otherwise field by field."""
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, **(override or {})}


def pod(override: dict[str, Any] | None) -> dict[str, Any]:
    return dict(override) if override is not None else dict(DEFAULT_POD_SECURITY_CONTEXT)
