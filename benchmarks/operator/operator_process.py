"""The operator as a process for the benchmark: started against a cluster, read through its metrics and psutil."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
from byoc_testenv.cluster import Cluster
from byoc_testenv.polling import free_port


class Operator:
    def __init__(self, cluster: Cluster, log: Path, resync_seconds: float | None = None) -> None:
        """`resync_seconds`: None keeps the operator's own default."""
        self.metrics_port = free_port()
        # The benchmark's workers name their orchestrators in their own namespace (docs/security.md).
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "BYOC_ALLOW_NAMESPACE_ORCHESTRATORS": "true"}
        if resync_seconds is not None:
            env["BYOC_RESYNC_SECONDS"] = str(resync_seconds)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "byoc_operator.main",
                "--liveness",
                "",
                "--metrics-host",
                "127.0.0.1",
                "--metrics-port",
                str(self.metrics_port),
            ],
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.metric("byoc_operator_reconciles_total")
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit(f"operator did not start; see {log}") from None
                time.sleep(0.3)

    def metric(self, prefix: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(prefix) and not line.startswith("#") and not line.startswith(prefix + "_created")
        )

    def rss_mb(self) -> float:
        return self.ps.memory_info().rss / 2**20

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
