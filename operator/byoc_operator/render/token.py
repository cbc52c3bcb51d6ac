"""The worker token (spec.registration.tokenSecretRef, BYOC): the Secret key mounted as a file into the router
and the worker pods, which require it as ``Authorization: Bearer <token>`` on stream requests. A file, not an
env variable: the kubelet updates a mounted Secret in place and both re-read it, so rotation needs no rollout."""

from __future__ import annotations

from typing import Any

from byoc_operator.render.worker import Worker

VOLUME = "byoc-token"
MOUNT_DIR = "/var/run/byoc/token"
FILE = f"{MOUNT_DIR}/token"


def uses_token(worker: Worker) -> bool:
    return worker.uses_router and worker.spec.registration.token_secret_ref is not None


def token_volume(worker: Worker) -> dict[str, Any]:
    ref = worker.spec.registration.token_secret_ref
    assert ref is not None
    return {"name": VOLUME, "secret": {"secretName": ref.name, "items": [{"key": ref.key, "path": "token"}]}}


def token_mount() -> dict[str, Any]:
    return {"name": VOLUME, "mountPath": MOUNT_DIR, "readOnly": True}


def with_token(worker: Worker, container: dict[str, Any], env_prefix: str) -> dict[str, Any]:
    """The container with the token file mounted and named in ``<prefix>TOKEN_FILE`` (for user images too: it
    is theirs to check)."""
    if not uses_token(worker):
        return container
    env = [*container.get("env", []), {"name": f"{env_prefix}TOKEN_FILE", "value": FILE}]
    return {**container, "env": env, "volumeMounts": [*container.get("volumeMounts", []), token_mount()]}
