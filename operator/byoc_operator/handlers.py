"""kopf wiring: indexes that mirror the cluster, and events that wake the reconciler. Nothing else.

Only low-level event handlers and indexes are used, so kopf itself writes nothing to the objects (no progress
annotations, no finalizers): an idle operator makes no writes.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Mapping
from typing import Any

import kopf

# kopf exports PRESENT but not its type, which its decorators' `labels` are annotated with.
from kopf._core.intents.filters import MetaFilterToken
from lightkube import AsyncClient

from byoc_operator import api
from byoc_operator.claims import capability_of
from byoc_operator.config import OperatorConfig
from byoc_operator.index import Key, slim_child, slim_configmap, slim_metadata, slim_pod
from byoc_operator.reconcile import Indexes, Reconciler
from byoc_operator.registration import ORCHESTRATOR_LABEL
from byoc_operator.render.worker import FIELD_MANAGER, LABEL_WORKER, MANAGED_BY

log = logging.getLogger(__name__)

# The children of every worker, and nothing else of the cluster.
CHILD_LABELS: Mapping[str, str | MetaFilterToken] = {
    LABEL_WORKER: kopf.PRESENT,
    "app.kubernetes.io/managed-by": MANAGED_BY,
}
ORCHESTRATOR_SECRET_LABELS: Mapping[str, str | MetaFilterToken] = {ORCHESTRATOR_LABEL: kopf.PRESENT}


def _namespaced(namespace: str | None) -> str:
    """The namespace of an object of a namespaced kind (kopf types it optional, for cluster-scoped kinds)."""
    if namespace is None:
        raise kopf.PermanentError("a namespaced object without a namespace")
    return namespace


def _worker_key(body: kopf.Body) -> Key:
    return _namespaced(body.metadata.namespace), body.metadata.labels[LABEL_WORKER]


def _config(memo: kopf.Memo) -> OperatorConfig:
    """The settings `main` parsed before the operator started."""
    config = memo.get("config")
    if not isinstance(config, OperatorConfig):
        raise kopf.PermanentError("started without settings: run the operator with `byoc-operator`")
    return config


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config = _config(memo)
    # Handler log lines stay in the log; Events are posted explicitly on condition transitions only.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = config.watch_timeout_seconds
    settings.watching.client_timeout = config.watch_timeout_seconds + 30
    memo.reconciler = Reconciler(AsyncClient(field_manager=FIELD_MANAGER), config)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    reconciler: Reconciler = memo.reconciler
    await reconciler.close()


@kopf.index(api.GROUP, api.VERSION, api.PLURAL)
def workers(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {
        (_namespaced(namespace), name): {
            "metadata": dict(body.metadata),
            "spec": dict(body.spec),
            "status": dict(body.status),
        }
    }


@kopf.index("apps", "v1", "deployments", labels=CHILD_LABELS)
def deployments(body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {_worker_key(body): slim_child(body)}


@kopf.index("v1", "services", labels=CHILD_LABELS)
def services(body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {_worker_key(body): slim_child(body)}


@kopf.index("policy", "v1", "poddisruptionbudgets", labels=CHILD_LABELS)
def disruption_budgets(body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {_worker_key(body): slim_child(body)}


@kopf.index("networking.k8s.io", "v1", "networkpolicies", labels=CHILD_LABELS)
def network_policies(body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {_worker_key(body): slim_child(body)}


@kopf.index("v1", "configmaps", labels=CHILD_LABELS)
def configmaps(body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {_worker_key(body): slim_configmap(body)}


@kopf.index("v1", "pods", labels=CHILD_LABELS)
def pods(body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {_worker_key(body): slim_pod(body)}


@kopf.index("v1", "secrets", labels=CHILD_LABELS)
def token_secrets(body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    """The workers' generated token Secrets: their metadata only (whether one exists, and whose), never the data."""
    return {_worker_key(body): {"kind": "Secret", "metadata": slim_metadata(dict(body.metadata))}}


@kopf.index("v1", "secrets", labels=ORCHESTRATOR_SECRET_LABELS)
def orchestrator_secrets(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    """Orchestrators described by labelled Secrets: their URL and labels only, never the secret."""
    data = body.get("data") or {}

    def text(key: str) -> str:
        return base64.b64decode(data.get(key, "")).decode(errors="replace").strip()

    return {
        _namespaced(namespace): {
            "name": name,
            "labels": dict(body.metadata.labels or {}),
            "url": text("url"),
            "has_ca": "ca.crt" in data,
            "insecure": text("insecureSkipVerify").lower() == "true",
            "plaintext": text("allowPlaintext").lower() == "true",
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
        asyncio.get_running_loop().create_task(_resync(reconciler, _config(memo).resync_seconds))
    return reconciler


async def _resync(reconciler: Reconciler, period: float) -> None:
    """Recheck every worker now and then, in case a watch missed something; writes nothing if nothing changed."""
    while True:
        await asyncio.sleep(period)
        reconciler.trigger_all()


@kopf.on.event(api.GROUP, api.VERSION, api.PLURAL)
async def worker_event(
    namespace: str | None, name: str, memo: kopf.Memo, type: str | None, body: kopf.Body, **kwargs: Any
) -> None:
    reconciler = _reconciler(memo, kwargs)
    reconciler.trigger((_namespaced(namespace), name))
    if type == "DELETED" and (capability := capability_of(dict(body))):
        # It may have held a capability name other workers wait for (claims.py): they may register now.
        reconciler.trigger_capability(capability)


@kopf.on.event("v1", "secrets", labels=ORCHESTRATOR_SECRET_LABELS)
async def orchestrator_secret_event(namespace: str | None, memo: kopf.Memo, **kwargs: Any) -> None:
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


@kopf.on.event("apps", "v1", "deployments", labels=CHILD_LABELS)
@kopf.on.event("v1", "services", labels=CHILD_LABELS)
@kopf.on.event("v1", "pods", labels=CHILD_LABELS)
@kopf.on.event("v1", "configmaps", labels=CHILD_LABELS)
@kopf.on.event("policy", "v1", "poddisruptionbudgets", labels=CHILD_LABELS)
@kopf.on.event("networking.k8s.io", "v1", "networkpolicies", labels=CHILD_LABELS)
@kopf.on.event("v1", "secrets", labels=CHILD_LABELS)
async def child_event(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    _reconciler(memo, kwargs).trigger(_worker_key(body))
