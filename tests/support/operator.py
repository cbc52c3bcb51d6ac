"""The operator under test and the BYOCWorkers it reconciles: the operator as its own process, manifests, and
reading a worker's status back. Used by the operator, fault and e2e suites."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, TypeVar

import yaml
from byoc_operator import api
from byoc_testenv import operator_process
from lightkube import Client
from lightkube.generic_resource import create_namespaced_resource

ROOT = Path(__file__).resolve().parents[2]
BYOCWorker = create_namespaced_resource(api.GROUP, api.VERSION, api.KIND, api.PLURAL)
# The operator's own namespace in these tests: BYOCOrchestrators' Secrets live there.
OPERATOR_NAMESPACE = "byoc-operator-tests"
T = TypeVar("T")


class OperatorProcess(operator_process.OperatorProcess):
    """The operator as users run it, with what these tests assume: a fast resync, a runtime image name, the
    operator's namespace, and namespace orchestrators allowed (most tests bring their orchestrator in the
    worker's namespace; test_byoc_orchestrators_cluster.py restarts it without)."""

    def __init__(self, kubeconfig: str, log_path: Path, env: dict[str, str] | None = None) -> None:
        defaults = {
            "KUBECONFIG": kubeconfig,
            "BYOC_RESYNC_SECONDS": "2",
            "BYOC_RUNTIME_IMAGE": "registry.local/byoc-runtime:test",
            "BYOC_OPERATOR_NAMESPACE": OPERATOR_NAMESPACE,
            "BYOC_ALLOW_NAMESPACE_ORCHESTRATORS": "true",
        }
        super().__init__({**os.environ, **defaults, **(env or {})}, log_path)


def worker_manifest(name: str, namespace: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": f"{api.GROUP}/{api.VERSION}",
        "kind": api.KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec or {},
    }


def kubectl_apply(cluster: Any, manifest: dict[str, Any], check: bool = True) -> subprocess.CompletedProcess[str]:
    """Apply through kubectl's stdin, as a user would (server-side field validation included)."""
    return cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest), check=check)


def get_worker(kube: Client, name: str, namespace: str) -> dict[str, Any]:
    obj = kube.get(BYOCWorker, name, namespace=namespace)
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return c
    return {}
