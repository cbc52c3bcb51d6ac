"""The operator under test and the BYOCWorkers it reconciles: the operator as its own process, manifests, and
reading a worker's status back. Used by the operator, fault and e2e suites."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, TypeVar

import yaml
from byoc_operator import api
from byoc_testenv.polling import free_port, stop_child, wait_for
from lightkube import Client
from lightkube.generic_resource import create_namespaced_resource

ROOT = Path(__file__).resolve().parents[2]
BYOCWorker = create_namespaced_resource(api.GROUP, api.VERSION, api.KIND, api.PLURAL)
# The operator's own namespace in these tests: BYOCOrchestrators' Secrets live there.
OPERATOR_NAMESPACE = "byoc-operator-tests"
T = TypeVar("T")


class OperatorProcess:
    """The operator as users run it: its own process, talking to the API server through a kubeconfig."""

    def __init__(self, kubeconfig: str, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.env = env or {}  # overrides of the test defaults below
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_port = 0

    def metrics(self) -> dict[str, float]:
        """The operator's Prometheus samples, by 'name{labels}'."""
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def start(self) -> None:
        port = free_port()
        self.metrics_port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            "BYOC_RESYNC_SECONDS": "2",
            "BYOC_RUNTIME_IMAGE": "registry.local/byoc-runtime:test",
            "BYOC_OPERATOR_NAMESPACE": OPERATOR_NAMESPACE,
            # Most tests bring their orchestrators in the worker's namespace; test_byoc_orchestrators_cluster.py
            # runs an operator that does not allow it (the chart's default).
            "BYOC_ALLOW_NAMESPACE_ORCHESTRATORS": "true",
            **self.env,
        }
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "byoc_operator.main",
                "--liveness",
                f"http://127.0.0.1:{port}/healthz",
                "--metrics-host",
                "127.0.0.1",
                "--metrics-port",
                str(self.metrics_port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def alive() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log_tail()
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(alive, timeout=60, what="the operator's liveness endpoint")

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies or the OOM killer strikes."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc:
            stop_child(self.proc, 15)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


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
