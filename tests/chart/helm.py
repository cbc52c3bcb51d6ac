"""The chart under test: helm itself, rendering, reading what it rendered, and the operator run the way the
chart runs it (its command line, environment and ServiceAccount token)."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml
from byoc_operator import crd
from byoc_testenv import tools
from byoc_testenv.operator_process import OperatorProcess
from byoc_testenv.polling import free_port

from tests.images.dockerfile import final_stage

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "byoc-operator"
CRD_NAME = crd.CRD_NAME
T = TypeVar("T")


# --- helm -------------------------------------------------------------------------------------------------------


class Helm:
    def __init__(self, home: Path, kubeconfig: Path | None = None) -> None:
        self.bin = str(tools.helm_path())
        self.env = {
            **os.environ,
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_DATA_HOME": str(home / "data"),
        }
        if kubeconfig:
            self.env["KUBECONFIG"] = str(kubeconfig)
        else:
            self.env.pop("KUBECONFIG", None)

    def run(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([self.bin, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res


def values_args(values: dict[str, Any] | None, tmp: Path) -> list[str]:
    if not values:
        return []
    path = tmp / f"values-{secrets.token_hex(3)}.yaml"
    path.write_text(yaml.safe_dump(values))
    return ["-f", str(path)]


def render(
    helm: Helm,
    values: dict[str, Any] | None = None,
    *,
    release: str = "rel",
    namespace: str = "byoc-system",
    chart: Path = CHART,
) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = helm.run("template", release, str(chart), "-n", namespace, *values_args(values, Path(tmp))).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def render_error(helm: Helm, values: dict[str, Any]) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        res = helm.run("template", "rel", str(CHART), *values_args(values, Path(tmp)), check=False)
    assert res.returncode != 0, f"values {values} were accepted"
    return res.stderr


def find(
    docs: list[dict[str, Any]], kind: str, name: str | None = None, namespace: str | None = None
) -> list[dict[str, Any]]:
    return [
        d
        for d in docs
        if d["kind"] == kind
        and (name is None or d["metadata"]["name"] == name)
        and (namespace is None or d["metadata"].get("namespace") == namespace)
    ]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


# --- waiting ----------------------------------------------------------------------------------------------------


# --- the operator as the chart runs it --------------------------------------------------------------------------


def service_account_kubeconfig(cluster: Any, service_account: str, namespace: str, path: Path) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount, as the in-cluster pod would."""
    token = cluster.kubectl("create", "token", service_account, "-n", namespace, "--duration=2h").stdout.strip()
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    entry = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "sa",
                "clusters": [{"name": "cluster", "cluster": entry["cluster"]}],
                "users": [{"name": "sa", "user": {"token": token}}],
                "contexts": [{"name": "sa", "context": {"cluster": "cluster", "user": "sa"}}],
            }
        )
    )
    return path


class ChartOperator(OperatorProcess):
    """The operator with exactly the command line and environment of the chart's Deployment (the image's
    ENTRYPOINT where the chart sets no command), authenticated as the chart's ServiceAccount."""

    def __init__(
        self,
        deployment: dict[str, Any],
        kubeconfig: Path,
        log_path: Path,
        pod_name: str = "op-0",
        env: dict[str, str] | None = None,
    ) -> None:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        entrypoint = final_stage(ROOT / "Dockerfile.operator").entrypoint
        port, metrics_port = free_port(), free_port()
        argv = [*(container.get("command") or entrypoint), *container.get("args", [])]
        # The one change: free loopback ports instead of the pod's own 0.0.0.0:8080 (liveness) and :8081
        # (metrics), which other processes on this machine may hold.
        local = [
            a.replace("http://0.0.0.0:8080/", f"http://127.0.0.1:{port}/").replace(
                "--metrics-port=8081", f"--metrics-port={metrics_port}"
            )
            for a in argv
        ]
        local += ["--metrics-host=127.0.0.1"]
        changed = [a for a in local if a not in argv]
        assert len(changed) == 3, f"the chart's operator arguments changed: {argv}"
        run_env = {**os.environ, "KUBECONFIG": str(kubeconfig), **(env or {})}
        run_env.pop("KUBERNETES_SERVICE_HOST", None)
        # The image has its console scripts (and python) on PATH; here they are in this venv.
        run_env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        for var in container.get("env", []):
            if "value" in var:
                run_env[var["name"]] = var["value"]
            elif var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
                run_env[var["name"]] = pod_name
            elif var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
                run_env[var["name"]] = deployment["metadata"]["namespace"]
            else:
                raise AssertionError(f"cannot run the operator outside a pod with env {var}")
        super().__init__(run_env, log_path, local, port, metrics_port)

    def permission_problems(self, namespace: str | None = None) -> list[str]:
        """Log lines that say the operator (or kopf) lacked a permission: cluster-wide ones, and with a namespace
        given, those about it (an earlier test's namespace may still be terminating, refusing new objects)."""
        needles = ("403 forbidden", "forbidden", "not enough permissions", "apiforbiddenerror")
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            lower = line.lower()
            if not any(n in lower for n in needles) or "being terminated" in lower:
                continue
            mentioned = set(re.findall(r"/namespaces/([a-z0-9-]+)/", line))
            if namespace and mentioned and namespace not in mentioned:
                continue
            out.append(line)
        return out


@contextlib.contextmanager
def chart_operator(*args: Any, **kwargs: Any) -> Iterator[ChartOperator]:
    op = ChartOperator(*args, **kwargs)
    try:
        yield op.start()
    finally:
        op.stop()
