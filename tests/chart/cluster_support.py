"""Shared pieces of the chart's cluster tests: releases, the examples, and reading the cluster."""

from __future__ import annotations

import contextlib
import copy
import json
import secrets
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from byoc_operator import crd
from byoc_testenv.polling import wait_for

from .helm import CHART, CRD_NAME, ROOT, Helm, one, render

EXAMPLES = ROOT / "examples"


@dataclass
class Release:
    name: str
    namespace: str
    values: dict[str, Any]
    helm: Helm
    docs: list[dict[str, Any]]

    @property
    def deployment(self) -> dict[str, Any]:
        return one(self.docs, "Deployment")

    @property
    def service_account(self) -> str:
        return one(self.docs, "ServiceAccount")["metadata"]["name"]


def install(cluster: Any, helm_home: Path, values: dict[str, Any], tmp: Path, prefix: str = "byoc") -> Release:
    name = f"{prefix}-{secrets.token_hex(3)}"
    namespace = cluster.create_namespace(f"{name}-system")
    helm = Helm(helm_home, cluster.kubeconfig)
    values_file = tmp / f"{name}.yaml"
    values_file.write_text(yaml.safe_dump(values))
    # --take-ownership: the BYOCWorker CRD may already be there, applied by kubectl (tests/operator does so).
    helm.run(
        "install",
        name,
        str(CHART),
        "-n",
        namespace,
        "-f",
        str(values_file),
        "--take-ownership",
        "--wait=watcher",
        "--timeout=120s",
    )
    return Release(name, namespace, values, helm, render(helm, values, release=name, namespace=namespace))


def uninstall(cluster: Any, release: Release) -> None:
    release.helm.run("uninstall", release.name, "-n", release.namespace, "--wait", "--timeout=120s", check=False)
    cluster.delete_namespace(release.namespace)


def restore_crd(cluster: Any) -> None:
    """Back to exactly the generated CRD: applying it as Helm's field manager drops whatever Helm's applies
    added (a test field, labels, annotations), so later tests in this session see the repository's CRD."""
    cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=helm",
        "-f",
        str(ROOT / "crds" / f"{CRD_NAME}.yaml"),
    )


def ensure_crd(cluster: Any) -> None:
    """Both CRDs, as `kubectl apply -f crds/` installs them for a release with crds.install=false."""
    names = [name.removesuffix(".yaml") for name in crd.files()]
    for name in names:
        if cluster.kubectl("get", "crd", name, check=False).returncode != 0:
            cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds" / f"{name}.yaml"))
    cluster.wait_established(*names)


def assert_no_other_operator(cluster: Any, tmp_ns: str) -> None:
    """The chart tests judge what one operator (with the chart's permissions) does: another operator running
    against this cluster (e.g. a session-wide one from tests/operator) would do it for it."""
    cluster.apply(
        {
            "apiVersion": "byoc.livepeer.org/v1alpha1",
            "kind": "BYOCWorker",
            "metadata": {"name": "probe", "namespace": tmp_ns},
            "spec": {"replicas": 0},
        }
    )
    time.sleep(4)
    status = get(cluster, "byocworker", "probe", tmp_ns).get("status")
    if status:
        import pytest

        pytest.fail(
            "another BYOCWorker operator is running against this cluster; run tests/chart on its own", pytrace=False
        )


@contextlib.contextmanager
def finalizers_dropped(cluster: Any, namespace: str):
    """Afterwards, no BYOCWorker of the namespace keeps the registration finalizer (the operator that would
    remove it is gone by then), so deleting the namespace does not hang."""
    try:
        yield
    finally:
        names = cluster.kubectl("get", "byocworkers", "-n", namespace, "-o", "name", check=False).stdout.split()
        for name in names:
            cluster.kubectl(
                "patch", name, "-n", namespace, "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False
            )


def get(cluster: Any, kind: str, name: str, namespace: str) -> dict[str, Any]:
    return json.loads(cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout)


def exists(cluster: Any, kind: str, name: str, namespace: str | None = None) -> bool:
    args = ["get", kind, name] + (["-n", namespace] if namespace else [])
    return cluster.kubectl(*args, check=False).returncode == 0


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return c
    return {}


def worker_condition(cluster: Any, name: str, namespace: str, type_: str = "Ready") -> dict[str, Any]:
    return condition(get(cluster, "byocworker", name, namespace), type_)


def wait_condition(
    cluster: Any, name: str, namespace: str, type_: str, status: str, reason: str | None = None, timeout: float = 90
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        c = worker_condition(cluster, name, namespace, type_)
        if c.get("status") == status and (reason is None or c.get("reason") == reason):
            return c
        return None

    return wait_for(check, timeout, what=f"{name}: {type_}={status} {reason or ''}")


RESUMED = "Resuming operations after the pause"
PAUSED = "Pausing operations in favour of"


def working(op: Any) -> bool:
    """Whether kopf's last peering decision in this replica's log was to work (with --peering it starts paused)."""
    lines = [line for line in op.log_path.read_text().splitlines() if RESUMED in line or PAUSED in line]
    return bool(lines) and RESUMED in lines[-1]


# --- examples ---------------------------------------------------------------------------------------------------


def example(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]


def for_test_orchestrators(docs: list[dict[str, Any]], urls: list[str], secret: str) -> list[dict[str, Any]]:
    """The example with its own orchestrator URLs and secrets (if any) pointed at the test orchestrators, and its
    router exposed in-cluster (no load balancer assigns addresses here), nothing else changed (they serve HTTPS with a
    self-signed certificate, as go-livepeer orchestrators do by default)."""
    docs = copy.deepcopy(docs)
    next_url = iter(urls * 4)
    for doc in docs:
        if doc["kind"] == "Secret":
            data = doc.setdefault("stringData", {})
            data["secret"] = secret
            if "url" in data:
                data["url"] = next(next_url)
        elif doc["kind"] == "BYOCWorker":
            for ref in doc["spec"].get("orchestrators") or []:
                ref["url"] = urls[0]
            (doc["spec"].get("registration") or {}).pop("expose", None)
    return docs


ADMIN_EXAMPLE = "admin/orchestrators.yaml"


@contextlib.contextmanager
def admin_orchestrators(
    cluster: Any, urls: list[str], secret: str, ca_files: list[Path], operator_ns: str, worker_ns: str
) -> Iterator[None]:
    """examples/admin/orchestrators.yaml pointed at the test orchestrators (their CAs trusted, the Secrets in the
    operator's namespace), offered to `worker_ns`; the cluster-scoped BYOCOrchestrators deleted afterwards."""
    docs = example(ADMIN_EXAMPLE)
    next_url = iter([urls[0], urls[0], urls[-1]])
    for doc in docs:
        if doc["kind"] == "Secret":
            doc["metadata"]["namespace"] = operator_ns
            data = doc["stringData"]
            if "secret" in data:
                data["secret"] = secret
            else:
                data["ca.crt"] = "".join(f.read_text() for f in ca_files)
        elif doc["metadata"]["name"] == "static-orchestrator":
            doc["spec"]["url"] = urls[0]
            doc["spec"].pop("cliUrl")
        else:
            doc["spec"]["url"] = next(next_url)
    cluster.kubectl("label", "namespace", worker_ns, "byoc.livepeer.org/workers=true", "--overwrite")
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    try:
        yield
    finally:
        for doc in docs:
            if doc["kind"] == "BYOCOrchestrator":
                cluster.kubectl("delete", "byocorchestrator", doc["metadata"]["name"], "--ignore-not-found")


def apply(cluster: Any, docs: list[dict[str, Any]], namespace: str) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))


def orchestrator_capabilities(url: str, ca_file: Path | None) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    with urllib.request.urlopen(f"{url}/_test/capabilities", timeout=5, context=context) as resp:
        return json.loads(resp.read())["capabilities"]


# --- RBAC surgery -----------------------------------------------------------------------------------------------


def without_verb(role: dict[str, Any], group: str, resource: str, verb: str) -> dict[str, Any]:
    role = copy.deepcopy(role)
    for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
        role["metadata"].pop(key, None)
    removed = False
    rules = []
    for rule in role["rules"]:
        if group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]:
            assert rule["apiGroups"] == [group] and rule["resources"] == [resource], rule
            rule = {**rule, "verbs": [v for v in rule["verbs"] if v != verb]}
            removed = True
        if rule["verbs"]:
            rules.append(rule)
    assert removed, f"the chart's role has no {verb} on {group}/{resource}"
    role["rules"] = rules
    return role


@contextlib.contextmanager
def rule_removed(cluster: Any, kind: str, name: str, namespace: str | None, group: str, resource: str, verb: str):
    ns_args = ["-n", namespace] if namespace else []
    original = json.loads(cluster.kubectl("get", kind, name, *ns_args, "-o", "json").stdout)
    cluster.kubectl("replace", "-f", "-", input=json.dumps(without_verb(original, group, resource, verb)))
    try:
        time.sleep(1)  # the authorizer's RBAC cache follows within a moment
        yield
    finally:
        cluster.kubectl("replace", "-f", "-", input=json.dumps(without_verb_none(original)))


def without_verb_none(role: dict[str, Any]) -> dict[str, Any]:
    role = copy.deepcopy(role)
    for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
        role["metadata"].pop(key, None)
    return role
