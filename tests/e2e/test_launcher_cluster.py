"""The launcher on the real control plane, with a small Python image: pods run on their IPs with the kubelet's env,
are Ready only once their probe passes, are reachable through ClusterIP Services and the hosts file, restart when
they exit, and get their grace period when deleted."""

from __future__ import annotations

import base64
import ipaddress
import json
import time
import urllib.request
from typing import Any

import pytest
import yaml
from byoc_testenv import Cluster
from byoc_testenv.launcher import Launcher
from byoc_testenv.polling import wait_for

from .conftest import EXTERNAL, PY_IMAGE

pytestmark = pytest.mark.cluster

# Serves HTTP on the address given after a delay (so readiness has something to wait for), printing its env.
SERVER = """
import http.server, json, os, sys, time
print("ENV " + json.dumps({k: v for k, v in os.environ.items() if k.startswith(("POD_", "FROM_"))}), flush=True)
time.sleep(3)
http.server.HTTPServer((sys.argv[1], 8000), http.server.SimpleHTTPRequestHandler).serve_forever()
"""
STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ignoring SIGTERM", flush=True)
time.sleep(600)
"""


def apply(cluster: Cluster, namespace: str, *manifests: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(manifests))


def py_pod(name: str, code: str, *args: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    container = {
        "name": "main",
        "image": PY_IMAGE,
        "args": ["-c", code, *args],
        "ports": [{"name": "http", "containerPort": 8000}],
        **spec.pop("container", {}),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [container], **spec},
    }


def pod_status(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return cluster.get("pod", name, namespace=namespace).get("status") or {}


def ready(status: dict[str, Any]) -> str | None:
    return next((c["status"] for c in status.get("conditions") or [] if c["type"] == "Ready"), None)


def test_pod_runs_on_its_ip_ready_after_its_probe_behind_a_service(
    e2e_cluster: Cluster, e2e_namespace: str, launcher: Launcher
) -> None:
    ns, cluster = e2e_namespace, e2e_cluster
    env = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "FROM_VALUE", "value": "at $(POD_IP)"},
    ]
    probe = {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 10}
    apply(
        cluster,
        ns,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s"},
            "data": {"k": base64.b64encode(b"s3cret").decode()},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web-pods"},
            "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 8000}]},
        },
        py_pod("web", SERVER, "$(POD_IP)", labels={"app": "web"}, container={"env": env, "readinessProbe": probe}),
    )

    status = wait_for(lambda: (s := pod_status(cluster, ns, "web")).get("phase") == "Running" and s, 60, "pod Running")
    if not EXTERNAL:
        assert ready(status) == "False"  # kwok gave it an IP; only the probe may make it Ready
    wait_for(lambda: ready(pod_status(cluster, ns, "web")) == "True", 60, "Ready after the probe passed")
    ip = status["podIP"]
    if not EXTERNAL:  # an attached cluster's pod range is unknown
        assert ipaddress.ip_address(ip) in ipaddress.ip_network(cluster.pod_cidr, strict=False)

    logs = launcher.logs(f"{ns}/web")
    seen = json.loads(next(line for line in logs.splitlines() if line.startswith("ENV "))[4:])
    assert seen == {
        "POD_NAME": "web",
        "POD_NAMESPACE": ns,
        "POD_IP": ip,
        "FROM_SECRET": "s3cret",
        "FROM_VALUE": f"at {ip}",
    }

    # ClusterIP (the launcher's proxy) and the hosts file (the launcher's DNS)
    (cluster_ip,) = wait_for(lambda: launcher.resolve(f"web.{ns}.svc"), 30, "the Service name")
    assert cluster_ip == cluster.get("service", "web", namespace=ns)["spec"]["clusterIP"]
    assert ipaddress.ip_address(cluster_ip) in ipaddress.ip_network(cluster.service_cidr)
    with urllib.request.urlopen(f"http://{cluster_ip}:80/", timeout=10) as resp:
        assert resp.status == 200
    assert launcher.resolve(f"web-pods.{ns}.svc.cluster.local") == [ip]

    cluster.kubectl("delete", "-n", ns, "pod/web", "--wait=false")
    wait_for(lambda: not launcher.resolve(f"web-pods.{ns}.svc"), 30, "the headless name to empty")
    wait_for(lambda: f"{ns}/web" not in launcher.state()["pods"], 30, "the process stopped")


def test_exits_restart_and_deletion_gets_the_grace_period(
    e2e_cluster: Cluster, e2e_namespace: str, launcher: Launcher
) -> None:
    ns, cluster = e2e_namespace, e2e_cluster
    apply(
        cluster,
        ns,
        py_pod("crash", "import sys; print('bye', flush=True); sys.exit(3)"),
        py_pod("stubborn", STUBBORN, terminationGracePeriodSeconds=3),
    )

    def restarted() -> dict[str, Any] | None:
        (container,) = pod_status(cluster, ns, "crash").get("containerStatuses") or [{}]
        return container if container.get("restartCount", 0) >= 1 and "lastState" in container else None

    container = wait_for(restarted, 60, "the crashing container restarted")
    assert container["lastState"]["terminated"]["exitCode"] == 3
    assert container["ready"] is False

    wait_for(lambda: "ignoring" in launcher.logs(f"{ns}/stubborn"), 60, "the stubborn process running")
    (entry,) = launcher.state()["pods"][f"{ns}/stubborn"]["containers"].values()
    began = time.monotonic()
    cluster.kubectl("delete", "-n", ns, "pod/stubborn", "--wait=false")
    wait_for(lambda: f"{ns}/stubborn" not in launcher.state()["pods"], 30, "the process killed", 0.1)
    took = time.monotonic() - began
    assert 2.5 <= took <= 15, took  # SIGTERM ignored, SIGKILL after terminationGracePeriodSeconds (3)
    with pytest.raises(OSError):
        open(f"/proc/{entry['pid']}/stat").close()
