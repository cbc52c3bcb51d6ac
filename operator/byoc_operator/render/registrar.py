"""The Live Runner registrar sidecar (dynamic mode): each pod heartbeats itself to every named orchestrator.

The sidecar (`byoc-registrar`, in the runtime image) only talks HTTP to the worker in the pod, so it works with
any worker image. Orchestrator secrets reach it as files from the Secrets the BYOCWorker names.
"""

from __future__ import annotations

from typing import Any

from byoc_operator.render.worker import Worker

REGISTRAR_PORT = 8090
SECRETS_DIR = "/var/run/byoc/orchestrators"
# Time the pod needs after the drain grace to unregister and stop.
TERMINATION_MARGIN_SECONDS = 15


def uses_registrar(worker: Worker) -> bool:
    reg = worker.spec.registration
    return worker.registers and reg.protocol == "live-runner" and reg.live_runner_mode == "dynamic"


def secret_volumes(worker: Worker) -> list[dict[str, Any]]:
    volumes = []
    for i, ref in enumerate(worker.spec.orchestrators or []):
        items = [{"key": ref.secret_ref.key, "path": "secret"}]
        volumes.append({"name": f"orchestrator-{i}", "secret": {"secretName": ref.secret_ref.name, "items": items}})
        ca = ref.tls.ca_bundle_secret_ref if ref.tls else None
        if ca:
            volumes.append(
                {
                    "name": f"orchestrator-{i}-ca",
                    "secret": {"secretName": ca.name, "items": [{"key": ca.key, "path": "ca.crt"}]},
                }
            )
    return volumes


def registrar_container(worker: Worker) -> dict[str, Any]:
    spec = worker.spec
    args = [
        f"--app={spec.capability.name}",
        f"--worker-url=http://127.0.0.1:{worker.port}",
        f"--capacity={spec.sessions_per_pod}",
        f"--drain-seconds={spec.drain.grace_period_seconds}",
        f"--port={REGISTRAR_PORT}",
    ]
    mounts = []
    for i, ref in enumerate(spec.orchestrators or []):
        args += [f"--orchestrator={ref.url.rstrip('/')}", f"--secret-file={SECRETS_DIR}/{i}/secret"]
        mounts.append({"name": f"orchestrator-{i}", "mountPath": f"{SECRETS_DIR}/{i}", "readOnly": True})
        if ref.tls and ref.tls.ca_bundle_secret_ref:
            args.append(f"--ca-file={SECRETS_DIR}/{i}-ca/ca.crt")
            mounts.append({"name": f"orchestrator-{i}-ca", "mountPath": f"{SECRETS_DIR}/{i}-ca", "readOnly": True})
    if any(ref.tls and ref.tls.insecure_skip_verify for ref in spec.orchestrators or []):
        args.append("--insecure-skip-verify=true")
    field = lambda path: {"valueFrom": {"fieldRef": {"fieldPath": path}}}  # noqa: E731
    health = {"httpGet": {"path": "/health", "port": "registrar"}, "periodSeconds": 10}
    return {
        "name": "registrar",
        "image": worker.runtime_image,
        "command": ["byoc-registrar"],
        "args": args,
        "env": [{"name": "POD_IP", **field("status.podIP")}, {"name": "POD_NAME", **field("metadata.name")}],
        "ports": [{"name": "registrar", "containerPort": REGISTRAR_PORT, "protocol": "TCP"}],
        "livenessProbe": health,
        "volumeMounts": mounts,
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def drain_hook() -> dict[str, Any]:
    """preStop on the worker: the registrar stops new sessions, waits for live ones, unregisters, then lets
    the worker get its SIGTERM."""
    return {"preStop": {"httpGet": {"path": "/drain", "port": REGISTRAR_PORT}}}
