"""The worker container's probes, and where a pod says whether it can take work."""

from __future__ import annotations

import math
from typing import Any

from byoc_operator.render.registrar import REGISTRAR_PORT
from byoc_operator.render.worker import Worker

READY_PATH = "/ready"


def ready_probe_target(worker: Worker) -> dict[str, Any]:
    """Where "can this pod take work" is answered: the bundled runtime's ``/ready`` (503 while LOADING or ERROR),
    or for any other image the sidecar's, which reads the worker's ``/health`` status (pytrickle answers that
    with 200 in every state, so it cannot be the readiness probe itself)."""
    port: int | str = "http" if worker.spec.container is None else REGISTRAR_PORT
    return {"path": READY_PATH, "port": port}


def probes(worker: Worker) -> dict[str, Any]:
    """Readiness and liveness only start after the startup probe passes, so a model that takes many minutes to
    load is neither killed nor sent traffic before it is ready. Startup and readiness ask whether the pod can take
    work; liveness only whether the worker answers (a worker in ERROR is kept, not restarted in a loop)."""
    probe = worker.spec.probes
    timing = {"periodSeconds": probe.period_seconds, "timeoutSeconds": 5}
    ready = {"httpGet": ready_probe_target(worker), **timing}
    alive = {"httpGet": {"path": probe.path, "port": "http"}, **timing}
    startup_failures = max(1, math.ceil(probe.startup_timeout_seconds / probe.period_seconds))
    return {
        "startupProbe": {**ready, "failureThreshold": startup_failures},
        "readinessProbe": {**ready, "failureThreshold": probe.failure_threshold},
        "livenessProbe": {**alive, "failureThreshold": probe.failure_threshold},
    }
