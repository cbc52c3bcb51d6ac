"""kopf wiring: indexes that mirror the cluster, and events that wake the reconciler. Nothing else.

Only low-level event handlers and indexes are used, so kopf itself writes nothing to the objects (no progress
annotations, no finalizers): an idle operator makes no writes.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from typing import Any

import kopf
from lightkube import AsyncClient

from byoc_operator import api, registration
from byoc_operator.claims import capability_of
from byoc_operator.index import Key, slim_child, slim_configmap, slim_metadata, slim_pod
from byoc_operator.pod_policy import PodPolicy
from byoc_operator.reconcile import Indexes, Reconciler
from byoc_operator.registration import ORCHESTRATOR_LABEL
from byoc_operator.render.worker import LABEL_WORKER

log = logging.getLogger(__name__)

CHILD_FILTER = {"labels": {LABEL_WORKER: kopf.PRESENT, "app.kubernetes.io/managed-by": "byoc-operator"}}
DEFAULT_RUNTIME_IMAGE = "ghcr.io/livepeer-byoc/byoc-runtime:0.1.0"
DEFAULT_EDGE_IMAGE = "ghcr.io/livepeer-byoc/byoc-edge:0.1.0"


def _worker_key(body: Any) -> Key:
    return body["metadata"]["namespace"], body["metadata"]["labels"][LABEL_WORKER]


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Handler log lines stay in the log; Events are posted explicitly on condition transitions only.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = int(os.environ.get("BYOC_WATCH_TIMEOUT", "300"))
    settings.watching.client_timeout = settings.watching.server_timeout + 30
    memo.reconciler = Reconciler(
        AsyncClient(field_manager="byoc-operator"),
        os.environ.get("BYOC_RUNTIME_IMAGE", DEFAULT_RUNTIME_IMAGE),
        concurrency=int(os.environ.get("BYOC_RECONCILE_CONCURRENCY", "32")),
        token_propagation_seconds=float(
            os.environ.get("BYOC_TOKEN_PROPAGATION_SECONDS", str(registration.TOKEN_PROPAGATION_SECONDS))
        ),
        policy=PodPolicy.from_env(os.environ),
        operator_namespace=os.environ.get("BYOC_OPERATOR_NAMESPACE") or None,
        namespace_orchestrators=os.environ.get("BYOC_ALLOW_NAMESPACE_ORCHESTRATORS", "false").lower() == "true",
        edge_image=os.environ.get("BYOC_EDGE_IMAGE", DEFAULT_EDGE_IMAGE),
    )
    memo.resync_seconds = float(os.environ.get("BYOC_RESYNC_SECONDS", "600"))


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    reconciler: Reconciler = memo.reconciler
    await reconciler.close()


@kopf.index(api.GROUP, api.VERSION, api.PLURAL)
def workers(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {(namespace, name): {"metadata": dict(body.metadata), "spec": dict(body.spec), "status": dict(body.status)}}


@kopf.index("apps", "v1", "deployments", **CHILD_FILTER)
def deployments(body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {_worker_key(body): slim_child(body)}


@kopf.index("v1", "services", **CHILD_FILTER)
def services(body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {_worker_key(body): slim_child(body)}


@kopf.index("policy", "v1", "poddisruptionbudgets", **CHILD_FILTER)
def disruption_budgets(body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {_worker_key(body): slim_child(body)}


@kopf.index("networking.k8s.io", "v1", "networkpolicies", **CHILD_FILTER)
def network_policies(body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {_worker_key(body): slim_child(body)}


@kopf.index("v1", "configmaps", **CHILD_FILTER)
def configmaps(body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {_worker_key(body): slim_configmap(body)}


@kopf.index("v1", "pods", **CHILD_FILTER)
def pods(body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {_worker_key(body): slim_pod(body)}


@kopf.index("v1", "secrets", **CHILD_FILTER)
def token_secrets(body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    """The workers' generated token Secrets: their metadata only (whether one exists, and whose), never the data."""
    return {_worker_key(body): {"kind": "Secret", "metadata": slim_metadata(dict(body.metadata))}}


@kopf.index("v1", "secrets", labels={ORCHESTRATOR_LABEL: kopf.PRESENT})
def orchestrator_secrets(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    """Orchestrators described by labelled Secrets: their URL and labels only, never the secret."""
    data = body.get("data") or {}

    def text(key: str) -> str:
        return base64.b64decode(data.get(key, "")).decode(errors="replace").strip()

    return {
        namespace: {
            "name": name,
            "labels": dict(body.metadata.labels or {}),
            "url": text("url"),
            "has_ca": "ca.crt" in data,
            "insecure": text("insecureSkipVerify").lower() == "true",
        }
    }


@kopf.index(api.GROUP, api.VERSION, api.ORCHESTRATOR_PLURAL)
def orchestrators(name: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    """BYOCOrchestrators: labels and spec (references to Secrets, never a secret)."""
    return {name: {"labels": dict(body.metadata.labels or {}), "spec": dict(body.spec)}}


@kopf.index("v1", "namespaces")
def namespaces(name: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, str]]:
    """Namespace labels, which BYOCOrchestrators' namespaceSelector matches."""
    return {name: dict(body.metadata.labels or {})}


def _reconciler(memo: kopf.Memo, kwargs: dict[str, Any]) -> Reconciler:
    reconciler: Reconciler = memo.reconciler
    if reconciler.indexes is None:
        reconciler.bind(
            Indexes(
                workers=kwargs["workers"],
                deployments=kwargs["deployments"],
                services=kwargs["services"],
                pods=kwargs["pods"],
                orchestrator_secrets=kwargs["orchestrator_secrets"],
                orchestrators=kwargs["orchestrators"],
                namespaces=kwargs["namespaces"],
                disruption_budgets=kwargs["disruption_budgets"],
                network_policies=kwargs["network_policies"],
                configmaps=kwargs["configmaps"],
                token_secrets=kwargs["token_secrets"],
            )
        )
        asyncio.get_running_loop().create_task(_resync(reconciler, memo.resync_seconds))
    return reconciler


async def _resync(reconciler: Reconciler, period: float) -> None:
    """Recheck every worker now and then, in case a watch missed something; writes nothing if nothing changed."""
    while True:
        await asyncio.sleep(period)
        reconciler.trigger_all()


@kopf.on.event(api.GROUP, api.VERSION, api.PLURAL)
async def worker_event(
    namespace: str, name: str, memo: kopf.Memo, type: str | None, body: kopf.Body, **kwargs: Any
) -> None:
    reconciler = _reconciler(memo, kwargs)
    reconciler.trigger((namespace, name))
    if type == "DELETED" and (capability := capability_of(dict(body))):
        # It may have held a capability name other workers wait for (claims.py): they may register now.
        reconciler.trigger_capability(capability)


@kopf.on.event("v1", "secrets", labels={ORCHESTRATOR_LABEL: kopf.PRESENT})
async def orchestrator_secret_event(namespace: str, memo: kopf.Memo, **kwargs: Any) -> None:
    """The fleet grew, shrank or moved: every worker in the namespace re-checks its registrations."""
    reconciler = _reconciler(memo, kwargs)
    for key in list(kwargs["workers"].keys()):
        if key[0] == namespace:
            reconciler.trigger(key)


@kopf.on.event(api.GROUP, api.VERSION, api.ORCHESTRATOR_PLURAL)
async def orchestrator_event(memo: kopf.Memo, **kwargs: Any) -> None:
    """An administrator added, changed or removed an orchestrator: every worker re-checks its registrations."""
    _reconciler(memo, kwargs).trigger_all()


@kopf.on.event("v1", "namespaces")
async def namespace_event(name: str, memo: kopf.Memo, **kwargs: Any) -> None:
    """A namespace's labels decide which BYOCOrchestrators it may use."""
    reconciler = _reconciler(memo, kwargs)
    for key in list(kwargs["workers"].keys()):
        if key[0] == name:
            reconciler.trigger(key)


@kopf.on.event("apps", "v1", "deployments", **CHILD_FILTER)
@kopf.on.event("v1", "services", **CHILD_FILTER)
@kopf.on.event("v1", "pods", **CHILD_FILTER)
@kopf.on.event("v1", "configmaps", **CHILD_FILTER)
@kopf.on.event("policy", "v1", "poddisruptionbudgets", **CHILD_FILTER)
@kopf.on.event("networking.k8s.io", "v1", "networkpolicies", **CHILD_FILTER)
@kopf.on.event("v1", "secrets", **CHILD_FILTER)
async def child_event(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    _reconciler(memo, kwargs).trigger(_worker_key(body))
