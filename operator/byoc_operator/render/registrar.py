"""The registrar sidecar and how every worker pod drains.

Live Runner dynamic mode: the sidecar (`byoc-registrar`, in the edge image) heartbeats the pod to every named
orchestrator. It only talks HTTP to the worker in the pod, so it works with any worker image. Orchestrator
secrets reach it as files from the Secrets the BYOCWorker names.

Draining, in every mode: the worker container's preStop hook blocks until live streams ended or the drain grace
is over, then the kubelet sends SIGTERM.
- Live Runner dynamic: the hook asks the sidecar, which also unregisters the runner.
- The bundled runtime otherwise: the hook (``byoc-drain``, run in the container) asks the runtime itself
  (``GET /drain?wait=true`` over loopback).
- Any other image otherwise: a drain-only sidecar (no orchestrators) serves the hook; it waits until the
  worker's ``/health`` says idle.
"""

from __future__ import annotations

import json
from typing import Any

from byoc_operator import api
from byoc_operator.render import security
from byoc_operator.render.pricing import price_info
from byoc_operator.render.worker import Worker

REGISTRAR_PORT = 8090
SECRETS_DIR = "/var/run/byoc/orchestrators"
# Time the pod needs after the drain grace to unregister and stop.
TERMINATION_MARGIN_SECONDS = 15


def uses_registrar(worker: Worker) -> bool:
    return worker.registers and worker.mode is api.RegistrationMode.LIVE_RUNNER_DYNAMIC


def uses_drain_sidecar(worker: Worker) -> bool:
    """A user image not registered by a sidecar drains through a drain-only one (ours drains itself)."""
    return worker.spec.container is not None and not uses_registrar(worker)


def wired_orchestrators(worker: Worker) -> list[tuple[int, api.OrchestratorRef]]:
    """The orchestrators the sidecar heartbeats to, by their index in the spec: those with a secret that may
    travel to their url (https, or plaintext allowed). The API server refuses the others; this keeps an object
    stored before that rule from sending its secret over http all the same."""
    return [
        (i, ref)
        for i, ref in enumerate(worker.spec.orchestrators or [])
        if ref.secret_ref is not None  # the API server requires one in this mode
        and api.secret_may_travel(ref.url, bool(ref.tls and ref.tls.allow_plaintext))
    ]


def secret_volumes(worker: Worker) -> list[dict[str, Any]]:
    volumes = []
    for i, ref in wired_orchestrators(worker):
        assert ref.secret_ref is not None
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
        # The pod IP, not 127.0.0.1: the same network namespace either way, and workers must listen on it anyway.
        f"--worker-url=http://$(POD_IP):{worker.port}",
        f"--capacity={spec.sessions_per_pod}",
        f"--drain-seconds={spec.drain.grace_period_seconds}",
        f"--port={REGISTRAR_PORT}",
    ]
    price = price_info(spec.pricing)
    if price:  # on-chain orchestrators refuse every heartbeat without it
        args.append(f"--price-info={json.dumps(price, sort_keys=True)}")
    mounts = []
    for i, ref in wired_orchestrators(worker):
        args += [f"--orchestrator={ref.url.rstrip('/')}", f"--secret-file={SECRETS_DIR}/{i}/secret"]
        mounts.append({"name": f"orchestrator-{i}", "mountPath": f"{SECRETS_DIR}/{i}", "readOnly": True})
        # One TLS setting per orchestrator, in the same order: its CA or "insecure" never applies to another.
        if ref.tls and ref.tls.ca_bundle_secret_ref:
            args.append(f"--orchestrator-tls={SECRETS_DIR}/{i}-ca/ca.crt")
            mounts.append({"name": f"orchestrator-{i}-ca", "mountPath": f"{SECRETS_DIR}/{i}-ca", "readOnly": True})
        else:
            args.append(f"--orchestrator-tls={'insecure' if ref.tls and ref.tls.insecure_skip_verify else 'system'}")
    field = lambda path: {"valueFrom": {"fieldRef": {"fieldPath": path}}}  # noqa: E731
    health = {"httpGet": {"path": "/health", "port": "registrar"}, "periodSeconds": 10}
    return {
        "name": "registrar",
        "image": worker.edge_image,
        "command": ["byoc-registrar"],
        "args": args,
        "env": [
            {"name": "POD_IP", **field("status.podIP")},
            {"name": "POD_NAME", **field("metadata.name")},
            security.NO_GPUS_ENV,
        ],
        "ports": [{"name": "registrar", "containerPort": REGISTRAR_PORT, "protocol": "TCP"}],
        "livenessProbe": health,
        "volumeMounts": mounts,
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": security.hardened(read_only_root=True),
    }


def drain_sidecar(worker: Worker) -> dict[str, Any]:
    """The registrar in drain-only mode: no orchestrators, no secrets; it only serves the worker's preStop."""
    sidecar = registrar_container(worker)
    sidecar["name"] = "drain"
    sidecar["args"] = [
        "--drain-only",
        f"--worker-url=http://$(POD_IP):{worker.port}",
        f"--drain-seconds={worker.spec.drain.grace_period_seconds}",
        f"--port={REGISTRAR_PORT}",
    ]
    sidecar["volumeMounts"] = []
    return sidecar


def drain_hook(worker: Worker) -> dict[str, Any]:
    """preStop on the worker: new sessions are refused, live ones run until they end or the drain grace is over
    (the registrar also unregisters), then the worker gets its SIGTERM."""
    if uses_registrar(worker) or uses_drain_sidecar(worker):
        return {"preStop": {"httpGet": {"path": "/drain", "port": REGISTRAR_PORT}}}
    # The runtime drains only for callers in its pod, and a kubelet's httpGet comes from the node: exec it.
    return {"preStop": {"exec": {"command": ["byoc-drain"]}}}
