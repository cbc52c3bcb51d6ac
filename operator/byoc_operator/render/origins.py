"""Where a worker's pods may open the URLs a start request names (the runtime's ``origins.py``): the origins of the
orchestrators the operator wired the worker to (``registration.allowed_origins``). They are kept in a ConfigMap the
bundled runtime reads through a volume (``BYOC_ALLOWED_ORIGINS_FILE``, re-read when the kubelet updates it), so an
orchestrator joining or leaving a fleet needs no pod restart. The volume is optional: a pod that starts before the
ConfigMap exists refuses every start until it appears. A user image gets neither (it reads no BYOC settings)."""

from __future__ import annotations

from typing import Any

from byoc_operator.render.worker import Worker

ORIGINS_KEY = "origins"
ORIGINS_VOLUME = "allowed-origins"
ORIGINS_DIR = "/etc/byoc/origins"


def origins_configmap_name(worker: Worker) -> str:
    return f"{worker.name}-origins"


def restricts_origins(worker: Worker) -> bool:
    return worker.spec.container is None and worker.registers


def render_origins_configmap(worker: Worker, origins: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": worker.metadata(origins_configmap_name(worker)),
        "data": {ORIGINS_KEY: "".join(f"{origin}\n" for origin in origins)},
    }


def origins_volume(worker: Worker) -> dict[str, Any]:
    return {"name": ORIGINS_VOLUME, "configMap": {"name": origins_configmap_name(worker), "optional": True}}


ORIGINS_MOUNT = {"name": ORIGINS_VOLUME, "mountPath": ORIGINS_DIR, "readOnly": True}
ORIGINS_ENV = {"name": "BYOC_ALLOWED_ORIGINS_FILE", "value": f"{ORIGINS_DIR}/{ORIGINS_KEY}"}
