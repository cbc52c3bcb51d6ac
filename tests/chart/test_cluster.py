"""The chart's cluster-wide install (clusterWide: true) on the local control plane: install, the operator running
with exactly the chart's RBAC (as its ServiceAccount), every example applied and reconciled in a namespace of its
own, a missing rule detected, upgrade (CRD included), uninstall. The default install, which serves the release
namespace only, is tests/chart/test_cluster_default.py.

The operator's Deployment is installed too, but kwok only pretends to run pods, so the operator itself runs
here as a process, with the Deployment's command line and environment and the ServiceAccount's token.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from byoc_operator import crd
from byoc_testenv.orchestrator.process import OrchestratorProcess
from byoc_testenv.polling import wait_for
from lightkube import ApiError, Client, KubeConfig
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType

from .cluster_support import (
    EXAMPLES,
    Release,
    admin_orchestrators,
    apply,
    assert_no_other_operator,
    example,
    exists,
    finalizers_dropped,
    for_test_orchestrators,
    get,
    install,
    orchestrator_capabilities,
    restore_crd,
    rule_removed,
    uninstall,
    wait_condition,
    worker_condition,
    working,
)
from .helm import CHART, CRD_NAME, ChartOperator, chart_operator, one, render, service_account_kubeconfig

pytestmark = pytest.mark.cluster

SECRET = "chart-test-orch-secret-5d2a"
VALUES = {
    "clusterWide": True,
    "runtimeImage": "registry.local/byoc-runtime:chart-test",
    "operator": {"resyncSeconds": 2},
}


@pytest.fixture(scope="module")
def release(cluster: Any, helm_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    tmp = tmp_path_factory.mktemp("chart")
    rel = install(cluster, helm_home, VALUES, tmp)
    probe_ns = cluster.create_namespace(f"{rel.name}-probe")
    try:
        assert_no_other_operator(cluster, probe_ns)
        yield rel
    finally:
        cluster.delete_namespace(probe_ns)
        uninstall(cluster, rel)
        restore_crd(cluster)


@pytest.fixture(scope="module")
def orchestrators() -> Iterator[list[OrchestratorProcess]]:
    with (
        OrchestratorProcess.start(secret=SECRET, tls=True) as a,
        OrchestratorProcess.start(secret=SECRET, tls=True) as b,
    ):
        yield [a, b]


@pytest.fixture
def sa_kubeconfig(cluster: Any, release: Release, tmp_path: Path) -> Path:
    return service_account_kubeconfig(cluster, release.service_account, release.namespace, tmp_path / "sa.yaml")


def operator_for(release: Release, kubeconfig: Path, tmp_path: Path) -> Any:
    return chart_operator(release.deployment, kubeconfig, tmp_path / "operator.log")


def test_install_creates_what_the_chart_renders(cluster: Any, release: Release) -> None:
    for doc in release.docs:
        kind, meta = doc["kind"], doc["metadata"]
        assert exists(cluster, kind.lower(), meta["name"], meta.get("namespace")), f"{kind} {meta['name']}"
    crd_obj = json.loads(cluster.kubectl("get", "crd", CRD_NAME, "-o", "json").stdout)
    assert crd_obj["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert crd_obj["metadata"]["annotations"]["meta.helm.sh/release-name"] == release.name
    for name in ("clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"):
        assert exists(cluster, "crd", name)
    cluster.wait_established(CRD_NAME, timeout=30)
    explained = cluster.kubectl("explain", "byocworker.spec.gpu.migProfile").stdout
    assert "MIG" in explained
    status = json.loads(release.helm.run("status", release.name, "-n", release.namespace, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"


def test_every_example_applies_cleanly(cluster: Any, release: Release, namespace: str) -> None:
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert {f.name for f in files} >= {
        "minimal.yaml",
        "user-image.yaml",
        "mig.yaml",
        "byoc-registration.yaml",
        "live-runner.yaml",
        "orchestrator-fleet.yaml",
        "speech-to-text.yaml",
    }
    for f in files:
        for doc in example(f.name):
            assert "namespace" not in doc["metadata"], f"{f.name}: examples go into the namespace given with -n"
        # Server-side dry run first (the CRD's schema and CEL rules, strict field validation), then for real.
        cluster.kubectl("apply", "-n", namespace, "--dry-run=server", "-f", str(f))
        out = cluster.kubectl("apply", "-n", namespace, "-f", str(f)).stdout
        assert "created" in out or "configured" in out, out
    cluster.delete_namespace(namespace, wait=True)  # its pods hold GPUs the next tests need


def test_operator_with_exactly_the_charts_rbac_reconciles_every_example(
    cluster: Any,
    release: Release,
    namespace: str,
    sa_kubeconfig: Path,
    tmp_path: Path,
    orchestrators: list[OrchestratorProcess],
) -> None:
    urls = [o.url for o in orchestrators]
    cas = [o.ca_file for o in orchestrators]
    with (
        finalizers_dropped(cluster, namespace),
        admin_orchestrators(cluster, urls, SECRET, cas, release.namespace, namespace),
        operator_for(release, sa_kubeconfig, tmp_path) as op,
    ):
        for name in ("minimal.yaml", "user-image.yaml", "mig.yaml"):
            apply(cluster, example(name), namespace)
        for name in ("byoc-registration.yaml", "orchestrator-fleet.yaml"):
            apply(cluster, for_test_orchestrators(example(name), urls, SECRET), namespace)
        # Dynamic Live Runner takes the namespace's own orchestrators, which the chart does not allow by default:
        # reconciled, and its Registered condition says why nothing is registered.
        apply(cluster, for_test_orchestrators(example("live-runner.yaml"), urls, SECRET), namespace)

        autoscaled = example("autoscaling.yaml")
        # Its pods run no process here, and pods that do not answer count as full: keep the ceiling low.
        autoscaled[0]["spec"]["autoscaling"]["maxReplicas"] = 2
        apply(cluster, autoscaled, namespace)

        for worker in ("passthrough", "acme-style", "grayscale-mig", "cartoon", "green-tint-eu", "live-runner"):
            wait_condition(cluster, worker, namespace, "Ready", "True", "AllPodsReady")
        wait_for(
            lambda: get(cluster, "byocworker", "autoscaled", namespace)["spec"]["replicas"] == 2,
            60,
            what="the autoscaler to count the silent pod as full and scale to 2",
        )
        wait_condition(cluster, "autoscaled", namespace, "Ready", "True", "AllPodsReady")
        assert exists(cluster, "poddisruptionbudget", "autoscaled", namespace)
        assert exists(cluster, "networkpolicy", "autoscaled", namespace)
        mig = get(cluster, "deployment", "grayscale-mig", namespace)["spec"]["template"]["spec"]["containers"][0]
        # (and the chart's security.defaultMemoryLimit: the example names no memory)
        assert mig["resources"]["limits"] == {"nvidia.com/mig-1g.10gb": "1", "memory": "16Gi"}
        runtime = get(cluster, "deployment", "passthrough", namespace)["spec"]["template"]["spec"]["containers"][0]
        assert runtime["image"] == VALUES["runtimeImage"]  # BYOC_RUNTIME_IMAGE from the chart

        # Registered; nothing is advertised free, since the kwok pods run no router process (tests/e2e has them).
        wait_condition(cluster, "cartoon", namespace, "Registered", "False", "RoutersUnreachable")
        live = wait_for(
            lambda: worker_condition(cluster, "live-runner", namespace, "Registered"),
            60,
            what="live-runner's Registered condition",
        )
        if live.get("reason") == "UnsupportedProtocol":  # operator versions before Live Runner support
            assert "live-runner" in live["message"]
        else:
            assert live["reason"] == "RegistrationFailed" and "not allowed by this operator" in live["message"]

        # The fleet of BYOCOrchestrators selected by label: registered with both orchestrators (the orchestrators'
        # own tables; the per-orchestrator status is the operator's business and tested in tests/operator).
        def fleet_registered() -> bool:
            return all(
                orchestrator_capabilities(o.url, o.ca_file).get("green-tint", {}).get("capacity") == 0
                for o in orchestrators
            )

        wait_for(fleet_registered, 60, what="green-tint registered with both fleet orchestrators")
        caps = orchestrator_capabilities(urls[0], orchestrators[0].ca_file)
        assert caps["cartoon-video"]["capacity"] == 0
        assert exists(cluster, "deployment", "cartoon-router", namespace)

        # Registration switched off: unregistered, and the router and its Services deleted.
        cluster.kubectl(
            "patch",
            "byocworker",
            "cartoon",
            "-n",
            namespace,
            "--type=json",
            "-p",
            '[{"op": "remove", "path": "/spec/orchestratorRefs"}]',
        )
        wait_for(lambda: not exists(cluster, "deployment", "cartoon-router", namespace), 60, what="router deleted")
        wait_for(lambda: not exists(cluster, "service", "cartoon-pods", namespace), 30, what="pods Service deleted")
        wait_for(
            lambda: "cartoon-video" not in orchestrator_capabilities(urls[0], orchestrators[0].ca_file),
            30,
            what="cartoon-video unregistered",
        )

        # Deleted: unregistered from the whole fleet, then the finalizer is removed.
        cluster.kubectl("delete", "byocworker", "green-tint-eu", "-n", namespace, "--timeout=60s")
        for url, orch in zip(urls, orchestrators, strict=True):
            assert "green-tint" not in orchestrator_capabilities(url, orch.ca_file)

        events = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
        reasons = {e["reason"] for e in events if e["involvedObject"]["kind"] == "BYOCWorker"}
        assert {"Registered", "Unregistered"} <= reasons, reasons
        assert SECRET not in json.dumps(events)

        problems = op.permission_problems(namespace)
        assert problems == [], "\n".join(problems)


# Each rule the chart grants, removed in turn, must break something visible. (group, resource, verb, scenario)
MISSING_RULES = [
    ("byoc.livepeer.org", "byocworkers/status", "patch", "status"),
    ("byoc.livepeer.org", "byocworkers", "patch", "finalizer"),
    ("apps", "deployments", "create", "apply"),
    ("", "services", "patch", "apply"),
    ("", "pods", "list", "pods"),
    ("", "secrets", "get", "secret"),
    ("", "secrets", "create", "token"),
    ("", "events", "create", "events"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "list", "kopf"),
    ("policy", "poddisruptionbudgets", "list", "kopf"),
    ("networking.k8s.io", "networkpolicies", "watch", "kopf"),
    ("byoc.livepeer.org", "byocorchestrators", "watch", "kopf"),
    ("", "namespaces", "list", "kopf"),
]


def _deployment(name: str, namespace: str, pod: dict[str, Any], owned: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": "byoc-operator", "app": name},
    }
    if owned:
        uid = "00000000-0000-0000-0000-000000000001"
        ref = {"apiVersion": "byoc.livepeer.org/v1alpha1", "kind": "BYOCWorker", "name": "w", "uid": uid}
        meta["ownerReferences"] = [{**ref, "controller": True}]
    container = {"name": "c", "image": "registry.local/x:1"}
    spec = {"automountServiceAccountToken": False, "containers": [container], **pod}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }


def test_the_admission_policy_bounds_what_the_operators_own_token_can_write(
    cluster: Any, release: Release, namespace: str, sa_kubeconfig: Path
) -> None:
    """H4: whatever its RBAC allows, the operator's ServiceAccount cannot run a pod that leaves its sandbox, nor
    write an object no BYOCWorker controls; the same writes by an administrator are not affected."""

    def as_operator(obj: dict[str, Any]) -> str:
        res = cluster.kubectl(
            "--kubeconfig",
            str(sa_kubeconfig),
            "create",
            "--dry-run=server",
            "-f",
            "-",
            input=json.dumps(obj),
            check=False,
        )
        return res.stdout + res.stderr

    allowed = as_operator(_deployment("ok", namespace, {}))
    assert "created" in allowed, allowed
    refused = {
        "is not one": _deployment("orphan", namespace, {}, owned=False),
        "no ServiceAccount token": _deployment("sa", namespace, {"serviceAccountName": "admin"}),
        "no host namespace": _deployment("host", namespace, {"hostNetwork": True}),
        "no hostPath": _deployment("path", namespace, {"volumes": [{"name": "v", "hostPath": {"path": "/"}}]}),
    }
    privileged = _deployment("priv", namespace, {})
    privileged["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    refused["no privileged container"] = privileged
    external = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _deployment("svc", namespace, {})["metadata"],
        "spec": {"ports": [{"port": 80}], "externalIPs": ["10.0.0.1"]},
    }
    refused["no externalIPs"] = external
    for why, obj in refused.items():
        out = as_operator(obj)
        assert "denied request" in out and why in out, (why, out)
        # The policy binds the operator's user only: an administrator's identical request is admitted.
        admin = cluster.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(obj), check=False)
        assert admin.returncode == 0, (why, admin.stderr)

    # The autoscaler's pod change (an annotation) passes; anything else on a pod does not.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": namespace, "labels": {"app": "p"}},
        "spec": {"containers": [{"name": "c", "image": "registry.local/x:1"}]},
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(pod))
    # (lightkube: the operator patches without reading first, which is all its RBAC on pods allows)
    client = Client(KubeConfig.from_file(sa_kubeconfig))
    cost = {"metadata": {"annotations": {"controller.kubernetes.io/pod-deletion-cost": "2"}}}
    client.patch(Pod, "p", cost, namespace=namespace, patch_type=PatchType.MERGE)
    with pytest.raises(ApiError) as refused_patch:
        client.patch(
            Pod, "p", {"metadata": {"labels": {"app": "other"}}}, namespace=namespace, patch_type=PatchType.MERGE
        )
    assert "nothing on a pod but its annotations" in refused_patch.value.status.message


@pytest.mark.parametrize(
    "group,resource,verb,scenario", MISSING_RULES, ids=[f"{r}-{v}" for _, r, v, _ in MISSING_RULES]
)
def test_a_missing_rule_makes_the_operator_fail(
    cluster: Any,
    release: Release,
    namespace: str,
    sa_kubeconfig: Path,
    tmp_path: Path,
    orchestrators: list[OrchestratorProcess],
    group: str,
    resource: str,
    verb: str,
    scenario: str,
) -> None:
    role = one(release.docs, "ClusterRole")["metadata"]["name"]
    # (Finalizers go once the operator has stopped: while it runs it would put them back.)
    with (
        contextlib.ExitStack() as stack,
        finalizers_dropped(cluster, namespace),
        rule_removed(cluster, "clusterrole", role, None, group, resource, verb),
        operator_for(release, sa_kubeconfig, tmp_path) as op,
    ):
        forbidden = _forbidden_waiter(op, resource, namespace)
        if scenario == "kopf":
            forbidden()  # kopf retries, then falls back to scanning once
            return
        if scenario == "token":
            # A BYOC worker naming no token gets a generated one: without create, it is not reconciled.
            apply(
                cluster,
                for_test_orchestrators(example("byoc-registration.yaml"), [orchestrators[0].url], SECRET),
                namespace,
            )
            c = wait_condition(cluster, "cartoon", namespace, "Degraded", "True", "ReconcileError")
            assert "Secret cartoon-token was refused" in c["message"] and "forbidden" in c["message"].lower()
            return
        if scenario in ("secret", "finalizer"):
            admin = admin_orchestrators(
                cluster, [orchestrators[0].url], SECRET, [orchestrators[0].ca_file], release.namespace, namespace
            )
            stack.enter_context(admin)
            apply(
                cluster,
                for_test_orchestrators(example("byoc-registration.yaml"), [orchestrators[0].url], SECRET),
                namespace,
            )
            if scenario == "secret":
                c = wait_condition(cluster, "cartoon", namespace, "Registered", "False", "RegistrationFailed")
                assert "cannot read key 'secret' of Secret orchestrator-0" in c["message"]
            else:
                forbidden()
                obj = get(cluster, "byocworker", "cartoon", namespace)
                assert not (obj["metadata"].get("finalizers")) and not worker_condition(
                    cluster, "cartoon", namespace, "Registered"
                )
            return
        apply(cluster, example("minimal.yaml"), namespace)
        if scenario == "apply":
            c = wait_condition(cluster, "passthrough", namespace, "Degraded", "True", "ReconcileError")
            assert "forbidden" in c["message"].lower()
        elif scenario == "status":
            forbidden()
            assert not get(cluster, "byocworker", "passthrough", namespace).get("status")
        elif scenario == "pods":
            # kopf runs no handler before every index is filled: without pods, nothing is reconciled.
            forbidden()
            time.sleep(5)  # a few resyncs
            assert worker_condition(cluster, "passthrough", namespace, "Ready").get("status") != "True"
        elif scenario == "events":
            wait_condition(cluster, "passthrough", namespace, "Ready", "True")
            forbidden()
            events = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
            assert not [e for e in events if e["involvedObject"]["kind"] == "BYOCWorker"]
        else:
            raise AssertionError(scenario)


def _forbidden_waiter(op: ChartOperator, resource: str, namespace: str) -> Any:
    base = resource.split("/")[0]

    def wait() -> None:
        # About this test's namespace, or cluster-wide (kopf watches every namespace in one request).
        wait_for(
            lambda: [
                p
                for p in op.permission_problems(namespace)
                if base in p and (namespace in p or "/namespaces/" not in p)
            ],
            60,
            what=f"a permission error about {resource} in the operator's log",
        )

    return wait


def test_cluster_wide_ha_with_peering(
    cluster: Any, release: Release, namespace: str, sa_kubeconfig: Path, tmp_path: Path
) -> None:
    """`helm upgrade --set replicaCount=2`: a ClusterKopfPeering, and two replicas of which one works."""
    values = {**VALUES, "replicaCount": 2}
    values_file = tmp_path / "ha.yaml"
    values_file.write_text(yaml.safe_dump(values))
    release.helm.run(
        "upgrade",
        release.name,
        str(CHART),
        "-n",
        release.namespace,
        "-f",
        str(values_file),
        "--force-conflicts",
        "--wait=watcher",
        "--timeout=120s",
    )
    deployment = one(render(release.helm, values, release=release.name, namespace=release.namespace), "Deployment")
    name = deployment["metadata"]["name"]
    assert exists(cluster, "clusterkopfpeering", name)
    ops = [ChartOperator(deployment, sa_kubeconfig, tmp_path / f"op-{i}.log", pod_name=f"op-{i}") for i in range(2)]
    try:
        for op in ops:
            op.start()
        wait_for(
            lambda: (
                set(get_cluster_scoped(cluster, "clusterkopfpeering", name).get("status") or {}) == {"op-0", "op-1"}
            ),
            60,
            what="both replicas in the ClusterKopfPeering",
        )
        wait_for(lambda: sorted(working(op) for op in ops) == [False, True], 60, what="exactly one replica working")
        apply(cluster, example("minimal.yaml"), namespace)
        wait_condition(cluster, "passthrough", namespace, "Ready", "True", "AllPodsReady")
        for op in ops:
            problems = op.permission_problems(namespace)
            assert problems == [], "\n".join(problems)
    finally:
        for op in ops:
            op.stop()


def get_cluster_scoped(cluster: Any, kind: str, name: str) -> dict[str, Any]:
    return json.loads(cluster.kubectl("get", kind, name, "-o", "json").stdout)


def test_upgrade_upgrades_the_crd(cluster: Any, release: Release, namespace: str, tmp_path: Path) -> None:
    """A changed chart whose CRD has a new field: `helm upgrade` serves the field; upgrading back removes it."""
    chart = tmp_path / "byoc-operator"
    shutil.copytree(CHART, chart)
    crd_file = chart / "files" / "crds" / crd.CRD_FILE
    definition = yaml.safe_load(crd_file.read_text())
    definition["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "upgradeProbe"
    ] = {"type": "string", "description": "A field only the upgraded chart has."}
    crd_file.write_text(yaml.safe_dump(definition, sort_keys=False))
    chart_yaml = chart / "Chart.yaml"
    chart_yaml.write_text(re.sub(r"(?m)^version: .*$", "version: 0.1.1-test", chart_yaml.read_text()))
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(VALUES))

    worker = {
        "apiVersion": "byoc.livepeer.org/v1alpha1",
        "kind": "BYOCWorker",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": {"replicas": 0, "upgradeProbe": "x"},
    }
    refused = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(worker), check=False)
    assert refused.returncode != 0 and "upgradeProbe" in refused.stderr

    # --force-conflicts: the CRD may also have been applied by `kubectl apply --server-side` (tests/operator
    # does; users who installed it by hand first do too), which co-owns .spec.versions (see docs/install.md).
    release.helm.run(
        "upgrade",
        release.name,
        str(chart),
        "-n",
        release.namespace,
        "-f",
        str(values),
        "--force-conflicts",
        "--wait=watcher",
        "--timeout=120s",
    )
    wait_for(
        lambda: cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(worker), check=False).returncode == 0,
        30,
        what="the new field accepted",
    )
    assert get(cluster, "byocworker", "probe", namespace)["spec"]["upgradeProbe"] == "x"
    # The API server republishes its OpenAPI (what explain reads) a moment after the CRD changes.
    wait_for(
        lambda: "upgradeProbe" in cluster.kubectl("explain", "byocworker.spec").stdout,
        60,
        what="kubectl explain showing the new field",
    )
    history = json.loads(release.helm.run("history", release.name, "-n", release.namespace, "-o", "json").stdout)
    assert history[-1]["chart"] == "byoc-operator-0.1.1-test"
    cluster.kubectl("delete", "byocworker", "probe", "-n", namespace)

    release.helm.run(
        "upgrade",
        release.name,
        str(CHART),
        "-n",
        release.namespace,
        "-f",
        str(values),
        "--force-conflicts",
        "--wait=watcher",
        "--timeout=120s",
    )
    wait_for(
        lambda: "upgradeProbe" not in cluster.kubectl("get", "crd", CRD_NAME, "-o", "json").stdout,
        30,
        what="the field removed again",
    )
    live = json.loads(cluster.kubectl("get", "crd", CRD_NAME, "-o", "json").stdout)
    assert live["spec"]["versions"] == crd.definition()["spec"]["versions"]


def test_uninstall_removes_the_release_but_keeps_the_crd(cluster: Any, release: Release, namespace: str) -> None:
    apply(cluster, example("minimal.yaml"), namespace)
    release.helm.run("uninstall", release.name, "-n", release.namespace, "--wait", "--timeout=120s")
    for doc in release.docs:
        kind, meta = doc["kind"], doc["metadata"]
        if kind == "CustomResourceDefinition":
            continue
        wait_for(
            lambda k=kind, m=meta: not exists(cluster, k.lower(), m["name"], m.get("namespace")),
            60,
            what=f"{kind} {meta['name']} deleted",
        )
    assert exists(cluster, "crd", CRD_NAME)
    assert exists(cluster, "byocworker", "passthrough", namespace)  # users' workers survive an uninstall
