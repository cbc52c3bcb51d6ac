"""A namespaced, highly available install on the local control plane: Roles in the watched namespaces only, two
replicas of the operator with kopf peering (one works, the other stands by and takes over), both running as the
chart's ServiceAccount with the Deployment's exact command line (random priority wrapper included)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from byoc_testenv.polling import wait_for

from .cluster_support import (
    Release,
    apply,
    assert_no_other_operator,
    ensure_crd,
    example,
    exists,
    get,
    install,
    uninstall,
    wait_condition,
    worker_condition,
    working,
)
from .helm import ChartOperator, find, service_account_kubeconfig

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def namespaces(cluster: Any) -> Iterator[list[str]]:
    suffix = secrets.token_hex(3)
    names = [cluster.create_namespace(f"team-{x}-{suffix}") for x in ("a", "b", "c")]
    yield names
    for name in names:
        cluster.delete_namespace(name)


@pytest.fixture(scope="module")
def release(
    cluster: Any, helm_home: Path, namespaces: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    ensure_crd(cluster)
    watched = namespaces[:2]
    values = {
        "watchNamespaces": watched,
        "replicaCount": 2,
        "crds": {"install": False},
        "operator": {"resyncSeconds": 2},
        "runtimeImage": "registry.local/byoc-runtime:chart-ha",
    }
    rel = install(cluster, helm_home, values, tmp_path_factory.mktemp("chart-ns"), prefix="byoc-ns")
    try:
        assert_no_other_operator(cluster, namespaces[2])
        cluster.kubectl("delete", "byocworker", "probe", "-n", namespaces[2])
        yield rel
    finally:
        uninstall(cluster, rel)


def test_namespaced_install_grants_only_the_watched_namespaces(
    cluster: Any, release: Release, namespaces: list[str]
) -> None:
    a, b, c = namespaces
    sa = f"system:serviceaccount:{release.namespace}:{release.service_account}"

    def can(verb: str, resource: str, namespace: str | None) -> bool:
        args = ["auth", "can-i", verb, resource, f"--as={sa}"] + (["-n", namespace] if namespace else [])
        return cluster.kubectl(*args, check=False).stdout.strip() == "yes"

    for ns in (a, b):
        assert exists(cluster, "role", release.deployment["metadata"]["name"], ns)
        assert can("patch", "byocworkers.byoc.livepeer.org/status", ns) and can("get", "secrets", ns)
        assert exists(cluster, "kopfpeering", release.deployment["metadata"]["name"], ns)
    for resource in ("byocworkers.byoc.livepeer.org", "secrets", "deployments.apps", "pods"):
        assert not can("list", resource, c), resource
        assert not can("list", resource, None), f"{resource} cluster-wide"
    assert can("list", "namespaces", None) and can("watch", "customresourcedefinitions", None)  # kopf's discovery
    assert not can("patch", "namespaces", None)
    # BYOCOrchestrators: read cluster-wide; their Secrets read by name in the release namespace, not listed.
    assert can("watch", "byocorchestrators.byoc.livepeer.org", None)
    assert not can("patch", "byocorchestrators.byoc.livepeer.org", None)
    assert can("get", "secrets", release.namespace) and not can("list", "secrets", release.namespace)
    deployment = get(cluster, "deployment", release.deployment["metadata"]["name"], release.namespace)
    assert deployment["spec"]["replicas"] == 2 and find(release.docs, "PodDisruptionBudget")


def test_two_peered_replicas_one_active_and_a_takeover(
    cluster: Any, release: Release, namespaces: list[str], tmp_path: Path
) -> None:
    a, b, c = namespaces
    kubeconfig = service_account_kubeconfig(cluster, release.service_account, release.namespace, tmp_path / "sa.yaml")
    ops = [
        ChartOperator(release.deployment, kubeconfig, tmp_path / f"op-{i}.log", pod_name=f"op-{i}") for i in range(2)
    ]
    try:
        for op in ops:
            op.start()
        assert "--priority" in ops[0].argv[2]  # the chart's random-priority wrapper ran
        # Both announce themselves in each watched namespace's peering object; the highest priority works, the
        # other starts paused (peering is mandatory with --peering) and stays so.
        name = release.deployment["metadata"]["name"]

        def peers() -> dict[str, Any]:
            found = [get(cluster, "kopfpeering", name, ns).get("status") or {} for ns in (a, b)]
            return found[0] if all(set(f) == {"op-0", "op-1"} for f in found) else {}

        priorities = wait_for(peers, 60, what="both replicas in the peering objects")
        assert priorities["op-0"]["priority"] != priorities["op-1"]["priority"]
        active_id = max(priorities, key=lambda k: priorities[k]["priority"])
        active, standby = sorted(ops, key=lambda op: op.env["POD_ID"] != active_id)
        wait_for(
            lambda: working(active) and not working(standby), 60, what="the highest priority working, the other paused"
        )

        for ns in (a, b, c):
            apply(cluster, example("minimal.yaml"), ns)
        for ns in (a, b):
            wait_condition(cluster, "passthrough", ns, "Ready", "True", "AllPodsReady")
        assert get(cluster, "byocworker", "passthrough", c).get("status") is None  # not watched
        assert not exists(cluster, "deployment", "passthrough", c)
        for op in ops:
            for ns in (a, b):
                problems = op.permission_problems(ns)
                assert problems == [], "\n".join(problems)

        active.stop()  # a clean exit leaves the peering at once
        wait_for(lambda: working(standby), 60, what="the standby resuming")
        cluster.kubectl("scale", "byocworker/passthrough", "-n", a, "--replicas=1")
        wait_for(
            lambda: get(cluster, "byocworker", "passthrough", a)["status"].get("ready") == "1/1",
            60,
            what="the former standby reconciling the scale-down",
        )
        assert worker_condition(cluster, "passthrough", a).get("status") == "True"
        assert standby.permission_problems(a) == []
    finally:
        for op in ops:
            op.stop()
