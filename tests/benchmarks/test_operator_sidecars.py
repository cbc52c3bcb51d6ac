"""The operator benchmark's stand-in for registrar sidecars: pod spec -> the real registrar, and the real
registrar run for each kwok pod against real test orchestrators."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from byoc_edge.registrar.config import load_config
from byoc_operator.render import Worker, render_deployment
from byoc_testenv.orchestrator.process import OrchestratorProcess, orchestrator_spec
from byoc_testenv.polling import wait_for
from lightkube.resources.core_v1 import Pod

from benchmarks.operator.sidecars import (
    SidecarProcess,
    downward_env,
    expand,
    joined_flags,
    mounted_secret_files,
    registrar_argv,
    registrar_container,
)

SECRET = "sidecar-test-secret"


def live_runner_deployment(namespace: str, urls: list[str], replicas: int) -> dict[str, Any]:
    body = {
        "metadata": {"name": "lr", "namespace": namespace, "uid": "x"},
        "spec": {
            "replicas": replicas,
            "sessionsPerPod": 2,
            "gpu": {"count": 1},
            "registration": {"protocol": "live-runner"},
            "orchestrators": [orchestrator_spec(url, "orch") for url in urls],
        },
    }
    deployment = render_deployment(Worker.from_body(body, "registry.local/byoc-runtime:test"))
    deployment["metadata"].pop("ownerReferences")
    return deployment


def pod_from(deployment: dict[str, Any], name: str, ip: str) -> Pod:
    template = deployment["spec"]["template"]
    return Pod.from_dict(
        {
            "metadata": {**template["metadata"], "name": name, "namespace": "ns"},
            "spec": template["spec"],
            "status": {"podIP": ip, "phase": "Running"},
        }
    )


def test_registrar_config_from_the_rendered_pod() -> None:
    deployment = live_runner_deployment("ns", ["http://orch-0:8935", "http://orch-1:8935"], 1)
    pod = pod_from(deployment, "lr-abc", "127.64.0.9")
    container = registrar_container(pod)
    assert container is not None
    env = downward_env(pod, container)
    # (the sidecar was allocated no GPU: it sees none)
    assert env == {"POD_IP": "127.64.0.9", "POD_NAME": "lr-abc", "NVIDIA_VISIBLE_DEVICES": "void"}
    files = mounted_secret_files(pod, container)
    assert set(files.values()) == {("orch", "secret")} and len(files) == 2
    local = {path: f"/tmp/copy-{i}" for i, path in enumerate(sorted(files))}
    config = load_config(registrar_argv(list(container.args), env, local, "http://127.0.0.1:5/pods/lr-abc"), env)
    assert config.runner_url == "http://127.64.0.9:8000"  # the pod's own worker port, not the stand-in's
    assert config.runner_id == "lr-abc"
    assert config.worker_url == "http://127.0.0.1:5/pods/lr-abc"
    assert config.port == 0
    assert config.capacity == 2
    assert [o.url for o in config.orchestrators] == ["http://orch-0:8935", "http://orch-1:8935"]
    assert [str(o.secret.path) for o in config.orchestrators] == ["/tmp/copy-0", "/tmp/copy-1"]


def test_args_expand_and_join_as_the_kubelet_would() -> None:
    assert expand("http://$(POD_IP):8000/$(NOPE)/$$(POD_IP)", {"POD_IP": "1.2.3.4"}) == (
        "http://1.2.3.4:8000/$(NOPE)/$(POD_IP)"
    )
    assert joined_flags(["--port", "8090", "--insecure-skip-verify", "--app=x"]) == [
        "--port=8090",
        "--insecure-skip-verify",
        "--app=x",
    ]


def test_unsupported_pod_specs_are_refused_with_a_reason() -> None:
    deployment = live_runner_deployment("ns", ["http://orch-0:8935"], 1)
    spec = deployment["spec"]["template"]["spec"]
    spec["containers"][1]["env"].append({"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}})
    next(v for v in spec["volumes"] if "secret" in v)["secret"].pop("items")
    pod = pod_from(deployment, "lr-x", "127.64.0.2")
    container = registrar_container(pod)
    assert container is not None
    with pytest.raises(ValueError, match="env T"):
        downward_env(pod, container)
    with pytest.raises(ValueError, match="whole-Secret"):
        mounted_secret_files(pod, container)


def discovery_routes(url: str) -> set[str]:
    with urllib.request.urlopen(f"{url}/discovery", timeout=30) as resp:
        listed = json.loads(resp.read())
    return {r["url"].split("/apps/")[1].split("/")[0] for o in listed for r in o.get("runners") or []}


def test_registrars_follow_the_pods(cluster: Any, namespace: str, tmp_path: Path) -> None:
    orchs = [OrchestratorProcess.start(secret=SECRET) for _ in range(2)]
    sidecars = None
    try:
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "orch"}, "stringData": {"secret": SECRET}}
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(secret))
        deployment = live_runner_deployment(namespace, [o.url for o in orchs], 3)
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(deployment))
        sidecars = SidecarProcess.start(cluster.kubeconfig, namespace, 0, 1, tmp_path / "sidecars.log")

        def pods() -> set[str]:
            got = cluster.kubectl("get", "pods", "-n", namespace, "-o", "json")
            items = json.loads(got.stdout)["items"]
            return {p["metadata"]["name"] for p in items if not p["metadata"].get("deletionTimestamp")}

        def listed(n: int) -> bool:
            names = pods()
            return len(names) == n and all(discovery_routes(o.url) == names for o in orchs)

        wait_for(lambda: listed(3), timeout=180, what="3 pods listed by both orchestrators")
        for orch in orchs:
            with urllib.request.urlopen(f"{orch.url}/discovery", timeout=30) as resp:
                runners = json.loads(resp.read())[0]["runners"]
            assert {r["capacity"] for r in runners} == {2}  # sessionsPerPod reached the orchestrator

        cluster.kubectl("scale", "deployment/lr", "-n", namespace, "--replicas=1")
        wait_for(lambda: listed(1), timeout=180, what="only the remaining pod listed")
        stats = sidecars.stats()
        gone = [p for p in stats["pods"].values() if p["deleted_at"] is not None]
        assert len(gone) == 2
        assert all(p["unregistered_at"] is not None and not p["error"] for p in gone)
        for orch in orchs:  # removed by the drain's unregister, not left to expire
            with urllib.request.urlopen(f"{orch.url}/_test/live-runners", timeout=30) as resp:
                removed = json.loads(resp.read())["removed"]
            assert sorted(r["reason"] for r in removed) == ["unregister", "unregister"]
        beats = {(b["orchestrator"], b["result"]): b["count"] for b in stats["heartbeats"]}
        assert all(beats.get((o.url, "ok"), 0) >= 3 for o in orchs)
        assert not any(result == "failed" for _, result in beats)

        sidecars.stop()  # the stand-in kubelet going away drains what is left
        sidecars = None
        assert all(discovery_routes(o.url) == set() for o in orchs)
    finally:
        if sidecars is not None:
            sidecars.stop()
        for orch in orchs:
            orch.stop()
