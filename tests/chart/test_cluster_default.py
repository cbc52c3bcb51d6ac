"""The chart's default install on the local control plane (security review H4): the operator serves its release
namespace only. Run with exactly the chart's RBAC (as its ServiceAccount, with the Deployment's command line), it
reconciles a worker there and registers one with an administrator's BYOCOrchestrator, whose Secret is in the same
namespace; a worker in another namespace is not touched, and the token reads no Secret outside the release
namespace. tests/chart/test_cluster.py runs the cluster-wide install (clusterWide: true)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from byoc_testenv.orchestrator.process import OrchestratorProcess
from byoc_testenv.polling import wait_for

from .cluster_support import (
    Release,
    admin_orchestrators,
    apply,
    assert_no_other_operator,
    ensure_crd,
    example,
    exists,
    finalizers_dropped,
    for_test_orchestrators,
    get,
    install,
    orchestrator_capabilities,
    uninstall,
    wait_condition,
)
from .helm import chart_operator, service_account_kubeconfig

pytestmark = pytest.mark.cluster

SECRET = "chart-default-orch-secret-81c4"


@pytest.fixture(scope="module")
def other_namespace(cluster: Any) -> Iterator[str]:
    name = cluster.create_namespace(f"not-served-{secrets.token_hex(3)}")
    yield name
    cluster.delete_namespace(name)


@pytest.fixture(scope="module")
def release(
    cluster: Any, helm_home: Path, other_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    ensure_crd(cluster)
    # Nothing about where the operator works: the chart's default.
    values = {
        "crds": {"install": False},
        "operator": {"resyncSeconds": 2},
        "runtimeImage": "registry.local/byoc-runtime:chart-default",
    }
    rel = install(cluster, helm_home, values, tmp_path_factory.mktemp("chart-default"), prefix="byoc-def")
    try:
        assert_no_other_operator(cluster, other_namespace)
        cluster.kubectl("delete", "byocworker", "probe", "-n", other_namespace)
        yield rel
    finally:
        uninstall(cluster, rel)


def test_the_default_install_grants_the_release_namespace_only(
    cluster: Any, release: Release, other_namespace: str
) -> None:
    sa = f"system:serviceaccount:{release.namespace}:{release.service_account}"

    def can(verb: str, resource: str, namespace: str | None) -> bool:
        args = ["auth", "can-i", verb, resource, f"--as={sa}"] + (["-n", namespace] if namespace else [])
        return cluster.kubectl(*args, check=False).stdout.strip() == "yes"

    assert can("patch", "byocworkers.byoc.livepeer.org/status", release.namespace)
    assert can("list", "secrets", release.namespace) and can("create", "deployments.apps", release.namespace)
    for resource in ("secrets", "byocworkers.byoc.livepeer.org", "deployments.apps", "pods", "configmaps"):
        assert not can("list", resource, other_namespace), resource
        assert not can("list", resource, None), f"{resource} cluster-wide"
    assert not can("get", "secrets", other_namespace)
    assert can("watch", "byocorchestrators.byoc.livepeer.org", None) and can("list", "namespaces", None)


def test_the_operator_with_the_default_rbac_serves_its_namespace_and_nothing_else(
    cluster: Any, release: Release, other_namespace: str, tmp_path: Path
) -> None:
    ns = release.namespace
    kubeconfig = service_account_kubeconfig(cluster, release.service_account, ns, tmp_path / "sa.yaml")
    with (
        OrchestratorProcess.start(secret=SECRET, tls=True) as orch,
        finalizers_dropped(cluster, ns),
        admin_orchestrators(cluster, [orch.url], SECRET, [orch.ca_file], ns, ns),
        chart_operator(release.deployment, kubeconfig, tmp_path / "operator.log") as op,
    ):
        assert f"--namespace={ns}" in op.argv
        apply(cluster, example("minimal.yaml"), ns)
        apply(cluster, for_test_orchestrators(example("byoc-registration.yaml"), [orch.url], SECRET), ns)
        apply(cluster, example("minimal.yaml"), other_namespace)
        wait_condition(cluster, "passthrough", ns, "Ready", "True", "AllPodsReady")
        wait_condition(cluster, "cartoon", ns, "Ready", "True", "AllPodsReady")
        wait_for(
            lambda: "cartoon-video" in orchestrator_capabilities(orch.url, orch.ca_file),
            60,
            what="cartoon-video registered with the BYOCOrchestrator (its Secret read in the release namespace)",
        )
        # Not served: no status, no children, however long the operator runs.
        assert get(cluster, "byocworker", "passthrough", other_namespace).get("status") is None
        assert not exists(cluster, "deployment", "passthrough", other_namespace)
        problems = op.permission_problems(ns)
        assert problems == [], "\n".join(problems)
        cluster.kubectl("delete", "byocworker", "cartoon", "-n", ns, "--timeout=60s")
        assert "cartoon-video" not in orchestrator_capabilities(orch.url, orch.ca_file)
