"""The worker token (BYOC): a Secret key mounted as a file into the router and the worker pods, which require it
as ``Authorization: Bearer <token>`` on stream requests. A file, not an env variable: the kubelet updates a
mounted Secret in place and both re-read it, so rotation needs no rollout.

The key is spec.registration.tokenSecretRef's, or, when it names none, ``token`` in the Secret ``<worker>-token``
that the operator generates once (random, owned by the worker, never rewritten): stream calls always need a
token, so a pod in the cluster cannot start streams or read another's without going through an orchestrator.
"""

from __future__ import annotations

import base64
from typing import Any

from byoc_operator.render.worker import Worker

VOLUME = "byoc-token"
MOUNT_DIR = "/var/run/byoc/token"
FILE = f"{MOUNT_DIR}/token"


def uses_token(worker: Worker) -> bool:
    return worker.uses_router and worker.spec.registration.token_secret_ref is not None


def render_token_secret(worker: Worker, token: str) -> dict[str, Any]:
    """The generated token's Secret (``token`` is random, made by the caller: rendering stays pure)."""
    ref = worker.spec.registration.token_secret_ref
    assert worker.generates_token and ref is not None
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": worker.metadata(ref.name),
        "data": {ref.key: base64.b64encode(token.encode()).decode()},
    }


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
