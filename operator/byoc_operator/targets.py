"""Which orchestrators a worker registers with, as the indexes show the cluster: the ones it names or selects, the
BYOCOrchestrators its namespace is offered, and where another worker holds its capability name."""

from __future__ import annotations

from typing import Any

import pydantic

from byoc_operator import api, registration
from byoc_operator.claims import Claim, capability_of, holders
from byoc_operator.config import OperatorConfig
from byoc_operator.index import Indexes, Key, first
from byoc_operator.render import Worker


def targets_of(
    indexes: Indexes, config: OperatorConfig, namespace: str, worker: Worker
) -> tuple[list[registration.Target], list[api.OrchestratorStatus]]:
    """The orchestrators this worker registers with, and status entries for those it may not use: named
    BYOCOrchestrators not offered to its namespace, and its own ones where the operator does not allow them."""
    orchestrators = {
        name: value for name in list(indexes.orchestrators.keys()) if (value := first(indexes.orchestrators.get(name)))
    }
    labels = first(indexes.namespaces.get(namespace)) or {}
    admin, refused = registration.cluster_targets(worker, orchestrators, labels, config.operator_namespace)
    if config.allow_namespace_orchestrators:
        secrets = list(indexes.orchestrator_secrets.get(namespace) or ())
        return registration.targets(worker, secrets, admin), refused
    own = registration.own_refusals(worker)
    return registration.targets(registration.without_own(worker), [], admin), [*own, *refused]


def held_by_others(
    indexes: Indexes, config: OperatorConfig, key: Key, body: dict[str, Any], targets: list[registration.Target]
) -> dict[str, Key]:
    """This worker's orchestrators where another worker holds its capability name (`claims.py`)."""
    capability = capability_of(body)
    if capability is None or not targets:
        return {}
    created = str(body["metadata"].get("creationTimestamp") or "")
    mine = Claim(created, key, capability, frozenset(t.url for t in targets))
    return holders(mine, claims(indexes, config, capability, key))


def claims(indexes: Indexes, config: OperatorConfig, capability: str, skip: Key) -> list[Claim]:
    """Every other BYOC worker registering `capability`, with the orchestrators it registers with."""
    out = []
    for other_key in list(indexes.workers.keys()):
        other = first(indexes.workers.get(other_key))
        if other_key == skip or other is None or capability_of(other) != capability:
            continue
        try:
            worker = Worker.from_body(other, config.runtime_image, edge_image=config.edge_image)
        except pydantic.ValidationError:
            continue
        if not worker.registers:
            continue
        urls = frozenset(t.url for t in targets_of(indexes, config, other_key[0], worker)[0])
        out.append(Claim(str(other["metadata"].get("creationTimestamp") or ""), other_key, capability, urls))
    return out
