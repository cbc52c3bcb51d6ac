"""runtime.secretRefs: Secret keys the processor reads as files (security review M6). `runtime.params` reach the pods
as the BYOC_PARAMS variable, which anyone who can read the Deployment or the BYOCWorker sees; a credential goes
here instead. The pod spec names only the Secrets and keys, never a value; one projected volume, mounted read-only
at `api.SECRET_FILES_DIR`, holds one file per entry, which the kubelet updates when a Secret changes."""

from __future__ import annotations

from typing import Any

from byoc_operator import api
from byoc_operator.render.worker import Worker

VOLUME = "byoc-secrets"
DIR_ENV = "BYOC_SECRETS_DIR"


def secret_files(worker: Worker) -> list[api.SecretFile]:
    runtime = worker.spec.runtime
    return list(runtime.secret_refs or []) if runtime is not None and worker.spec.container is None else []


def secret_files_volume(worker: Worker) -> dict[str, Any]:
    sources = [
        {"secret": {"name": ref.name, "items": [{"key": ref.key, "path": ref.file}]}} for ref in secret_files(worker)
    ]
    return {"name": VOLUME, "projected": {"sources": sources}}


def secret_files_mount() -> dict[str, Any]:
    return {"name": VOLUME, "mountPath": api.SECRET_FILES_DIR, "readOnly": True}


def secret_files_env() -> dict[str, Any]:
    return {"name": DIR_ENV, "value": api.SECRET_FILES_DIR}
