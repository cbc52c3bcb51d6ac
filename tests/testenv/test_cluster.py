"""The real control plane with fake GPU nodes: scheduler, controller-manager, kwok stages."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from byoc_testenv import Cluster, CPUNodeGroup, GPUNodeGroup, stages
from byoc_testenv.polling import wait_for

pytestmark = pytest.mark.cluster

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def pod(
    name: str,
    *,
    gpus: int = 0,
    mig: str | None = None,
    tolerate: bool = True,
    simulate: str | None = None,
    containers: int = 1,
) -> dict[str, Any]:
    limits = {}
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)
    if mig:
        limits[mig] = "1"
    spec: dict[str, Any] = {
        "containers": [
            {"name": f"c{i}", "image": f"example.invalid/worker:{i}", "resources": {"limits": limits} if limits else {}}
            for i in range(containers)
        ],
    }
    if tolerate:
        spec["tolerations"] = [GPU_TOLERATION]
    meta: dict[str, Any] = {"name": name}
    if simulate:
        meta["annotations"] = {stages.SIMULATE_ANNOTATION: simulate}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def get_pod(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return cluster.get("pod", name, namespace=ns)


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), {})


def node_labels(cluster: Cluster, name: str) -> dict[str, str]:
    return cluster.get("node", name)["metadata"]["labels"]


def test_nodes_have_gpu_capacity_labels_and_taint(cluster: Cluster):
    items = {n["metadata"]["name"]: n for n in cluster.get("nodes")["items"]}
    h100 = [n for name, n in items.items() if name.startswith("gpu-h100-")]
    assert len(h100) >= 3
    for n in h100:
        assert n["status"]["capacity"]["nvidia.com/gpu"] == "4"
        assert n["status"]["allocatable"]["nvidia.com/gpu"] == "4"
        assert n["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
        assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"} in n["spec"]["taints"]
        assert condition(n, "Ready")["status"] == "True"
    mig = items["gpu-a100-mig-0"]
    assert mig["status"]["allocatable"]["nvidia.com/mig-1g.10gb"] == "7"
    cpu = items["cpu-0"]
    assert "nvidia.com/gpu" not in cpu["status"]["capacity"] and not cpu["spec"].get("taints")


def test_gpu_pod_schedules_on_gpu_node_and_becomes_ready(cluster: Cluster, namespace: str):
    cluster.apply(pod("gpu", gpus=1), namespace=namespace)
    cluster.wait_for("pod/gpu", "condition=Ready", namespace=namespace, timeout=60)
    p = get_pod(cluster, namespace, "gpu")
    assert p["status"]["phase"] == "Running"
    assert node_labels(cluster, p["spec"]["nodeName"])["nvidia.com/gpu.present"] == "true"
    assert p["status"]["podIP"].startswith("127.")  # fake IPs stay on loopback


def test_mig_pod_lands_on_the_mig_node(cluster: Cluster, namespace: str):
    cluster.apply(pod("mig", mig="nvidia.com/mig-1g.10gb"), namespace=namespace)
    cluster.wait_for("pod/mig", "condition=Ready", namespace=namespace, timeout=60)
    assert get_pod(cluster, namespace, "mig")["spec"]["nodeName"] == "gpu-a100-mig-0"


def test_pod_without_toleration_stays_off_gpu_nodes(cluster: Cluster, namespace: str):
    cluster.apply(pod("plain", tolerate=False), namespace=namespace)
    cluster.wait_for("pod/plain", "condition=Ready", namespace=namespace, timeout=60)
    node = get_pod(cluster, namespace, "plain")["spec"]["nodeName"]
    assert "nvidia.com/gpu.present" not in node_labels(cluster, node)


def test_too_many_gpus_is_unschedulable(cluster: Cluster, namespace: str):
    cluster.apply(pod("greedy", gpus=64), namespace=namespace)

    def unschedulable():
        cond = condition(get_pod(cluster, namespace, "greedy"), "PodScheduled")
        return cond if cond.get("reason") == "Unschedulable" else None

    cond = wait_for(unschedulable, what="the scheduler's Unschedulable condition")
    assert cond["status"] == "False"
    assert "nvidia.com/gpu" in cond["message"]
    p = get_pod(cluster, namespace, "greedy")
    assert p["status"]["phase"] == "Pending" and not p["spec"].get("nodeName")


def test_deployment_creates_ready_pods(cluster: Cluster, namespace: str):
    cluster.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "tolerations": [GPU_TOLERATION],
                        "containers": [
                            {
                                "name": "w",
                                "image": "example.invalid/w:1",
                                "resources": {"limits": {"nvidia.com/gpu": "1"}},
                            }
                        ],
                    },
                },
            },
        },
        namespace=namespace,
    )
    cluster.wait_for("deployment/web", "condition=Available", namespace=namespace, timeout=90)
    d = cluster.get("deployment", "web", namespace=namespace)
    assert d["status"]["readyReplicas"] == 3
    pods = cluster.get("pods", namespace=namespace)["items"]
    assert len(pods) == 3
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet" for p in pods)


def test_deleting_owner_garbage_collects_owned_configmap(cluster: Cluster, namespace: str):
    cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}, namespace=namespace)
    uid = cluster.get("configmap", "owner", namespace=namespace)["metadata"]["uid"]
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "owned",
                "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}],
            },
        },
        namespace=namespace,
    )
    cluster.kubectl("delete", "configmap", "owner", "-n", namespace)

    def gone():
        res = cluster.kubectl("get", "configmap", "owned", "-n", namespace, check=False)
        return res.returncode != 0 and "NotFound" in res.stderr

    wait_for(gone, timeout=60, what="garbage collection of the owned ConfigMap")


def test_job_runs_to_completion(cluster: Cluster, namespace: str):
    cluster.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once"},
            "spec": {
                "template": {
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "example.invalid/j:1"}]}
                }
            },
        },
        namespace=namespace,
    )
    cluster.wait_for("job/once", "condition=Complete", namespace=namespace, timeout=60)


def _container_statuses(cluster: Cluster, ns: str, name: str) -> list[dict[str, Any]]:
    return get_pod(cluster, ns, name)["status"].get("containerStatuses") or []


def test_simulated_image_pull_error(cluster: Cluster, namespace: str):
    cluster.apply(pod("pull", simulate=stages.IMAGE_PULL_ERROR), namespace=namespace)
    [cs] = wait_for(lambda: _container_statuses(cluster, namespace, "pull"), what="container status")
    assert cs["state"]["waiting"]["reason"] == "ImagePullBackOff"
    assert "Back-off pulling image" in cs["state"]["waiting"]["message"]
    assert cs["ready"] is False
    p = get_pod(cluster, namespace, "pull")
    assert p["status"]["phase"] == "Pending"
    assert condition(p, "Ready")["status"] == "False"


def test_simulated_crash_loop(cluster: Cluster, namespace: str):
    cluster.apply(pod("crash", simulate=stages.CRASH_LOOP, containers=2), namespace=namespace)
    statuses = wait_for(lambda: _container_statuses(cluster, namespace, "crash"), what="container status")
    assert len(statuses) == 2
    for cs in statuses:
        assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        assert cs["restartCount"] > 0
        assert cs["lastState"]["terminated"]["exitCode"] == 1
        assert cs["ready"] is False
    p = get_pod(cluster, namespace, "crash")
    assert p["status"]["phase"] == "Running"
    assert condition(p, "Ready")["status"] == "False"
    assert condition(p, "Ready")["reason"] == "ContainersNotReady"


def test_crash_loop_restart_count_grows(cluster: Cluster, namespace: str):
    cluster.apply(pod("crash", simulate=stages.CRASH_LOOP), namespace=namespace)
    [first] = wait_for(lambda: _container_statuses(cluster, namespace, "crash"), what="container status")

    def restarted():
        [cs] = _container_statuses(cluster, namespace, "crash")
        return cs if cs["restartCount"] > first["restartCount"] else None

    cs = wait_for(restarted, timeout=stages.CRASH_LOOP_RESTART_SECONDS * 3, what="a further restart")
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"


def test_simulated_not_ready(cluster: Cluster, namespace: str):
    cluster.apply(pod("nr", simulate=stages.NOT_READY), namespace=namespace)
    [cs] = wait_for(lambda: _container_statuses(cluster, namespace, "nr"), what="container status")
    assert "running" in cs["state"] and cs["ready"] is False
    p = get_pod(cluster, namespace, "nr")
    assert p["status"]["phase"] == "Running"
    assert condition(p, "Ready")["status"] == "False"
    time.sleep(2)  # and it stays that way
    assert condition(get_pod(cluster, namespace, "nr"), "Ready")["status"] == "False"


def test_deleted_pods_go_away(cluster: Cluster, namespace: str):
    cluster.apply(pod("short"), namespace=namespace)
    cluster.wait_for("pod/short", "condition=Ready", namespace=namespace, timeout=60)
    cluster.kubectl("delete", "pod", "short", "-n", namespace, "--wait=true", "--timeout=30s")


def test_add_and_delete_nodes(cluster: Cluster, namespace: str):
    names = cluster.add_nodes(
        GPUNodeGroup("gpu-l4", count=2, gpus_per_node=1, gpu_product="NVIDIA-L4"), CPUNodeGroup("extra")
    )
    assert names == ["gpu-l4-0", "gpu-l4-1", "extra-0"]
    try:
        assert node_labels(cluster, "gpu-l4-1")["nvidia.com/gpu.product"] == "NVIDIA-L4"
        # A pod that only an L4 node can take lands there.
        p = pod("l4", gpus=1)
        p["spec"]["nodeSelector"] = {"nvidia.com/gpu.product": "NVIDIA-L4"}
        cluster.apply(p, namespace=namespace)
        cluster.wait_for("pod/l4", "condition=Ready", namespace=namespace, timeout=60)
        assert get_pod(cluster, namespace, "l4")["spec"]["nodeName"].startswith("gpu-l4-")
        # Numbering continues after existing nodes of the same group.
        assert cluster.add_nodes(CPUNodeGroup("extra")) == ["extra-1"]
    finally:
        for name in (*names, "extra-1"):
            cluster.delete_node(name)
    assert not {"gpu-l4-0", "gpu-l4-1", "extra-0", "extra-1"} & set(cluster.node_names())


def test_tools_and_helm(cluster: Cluster):
    from byoc_testenv import tools

    assert os.access(tools.kubectl_path(), os.X_OK) and os.access(tools.helm_path(), os.X_OK)
    out = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert out["serverVersion"]["gitVersion"] == "v1.35.4"


def test_restart_apiserver_keeps_state(cluster: Cluster, namespace: str):
    if not cluster.owned:
        pytest.skip("restart needs a cluster this session started (BYOC_TESTENV_KUBECONFIG is set)")
    cluster.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep"}, "data": {"k": "v"}}, namespace=namespace
    )
    cluster.stop_component("kube-apiserver")
    assert cluster.kubectl("get", "--raw", "/readyz", check=False, timeout=10).returncode != 0
    cluster.start_components()
    assert cluster.get("configmap", "keep", namespace=namespace)["data"] == {"k": "v"}
    # The rest of the control plane still works after the restart.
    cluster.apply(pod("after"), namespace=namespace)
    cluster.wait_for("pod/after", "condition=Ready", namespace=namespace, timeout=90)
    cluster.restart_apiserver(down_seconds=1)
    assert cluster.get("configmap", "keep", namespace=namespace)["data"] == {"k": "v"}


def test_long_apiserver_outage_leaves_controllers_and_scheduler_running(cluster: Cluster, namespace: str):
    """An outage longer than a leader lease's renew deadline (10 s) must not end the controller manager or the
    scheduler: nothing here would restart them, and every later Deployment would silently get no pods."""
    if not cluster.owned:
        pytest.skip("restart needs a cluster this session started (BYOC_TESTENV_KUBECONFIG is set)")
    assert cluster.workdir is not None
    pid_files = {c: cluster.workdir / "pids" / f"{c}.pid" for c in ("kube-controller-manager", "kube-scheduler")}
    pids = {c: int(f.read_text()) for c, f in pid_files.items()}
    cluster.restart_apiserver(down_seconds=15)
    time.sleep(5)  # past the point where a lost lease would have ended them
    for component, pid in pids.items():
        assert Path(f"/proc/{pid}").exists(), f"{component} exited during the API server outage"
    cluster.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "after-outage"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "after-outage"}},
                "template": {"metadata": {"labels": {"app": "after-outage"}}, "spec": pod("x")["spec"]},
            },
        },
        namespace=namespace,
    )
    cluster.kubectl("rollout", "status", "-n", namespace, "deployment/after-outage", "--timeout=90s", timeout=120)


def test_components_run_from_the_cache_on_loopback(cluster: Cluster):
    """Nothing was downloaded: every component process runs a binary from the build cache, on 127.0.0.1."""
    if not cluster.owned:
        pytest.skip("needs a cluster this session started")
    from byoc_testenv import build

    assert cluster.workdir is not None
    cache = build.cache_root().resolve()
    pids = {f.stem: int(f.read_text()) for f in (cluster.workdir / "pids").glob("*.pid")}
    assert {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok-controller"} <= set(pids)
    for name, pid in pids.items():
        exe = Path(os.readlink(f"/proc/{pid}/exe")).resolve()
        assert exe.is_relative_to(cache), f"{name} runs {exe}, not a cached binary"
    server = cluster.kubectl("config", "view", "-o", "jsonpath={.clusters[0].cluster.server}").stdout
    assert server.startswith("https://127.0.0.1:")
