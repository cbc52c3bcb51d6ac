"""The operator as its own process, as users run it: started, waited for on its liveness endpoint, read through
its log and its /metrics, stopped or killed. The demo, the operator and fault suites and the chart tests (which
build the command line from the chart's Deployment) all run it through this."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

from byoc_testenv.polling import free_port, stop_child, wait_for


def operator_argv(liveness_port: int, metrics_port: int) -> list[str]:
    """``byoc-operator`` from this interpreter, on loopback ports."""
    return [
        sys.executable,
        "-m",
        "byoc_operator.main",
        "--liveness",
        f"http://127.0.0.1:{liveness_port}/healthz",
        "--metrics-host",
        "127.0.0.1",
        "--metrics-port",
        str(metrics_port),
    ]


class OperatorProcess:
    """One operator process. ``argv`` must serve liveness on ``liveness_port`` and metrics on ``metrics_port``
    (default: ``operator_argv`` on free ports)."""

    def __init__(
        self,
        env: Mapping[str, str],
        log_path: Path,
        argv: Sequence[str] | None = None,
        liveness_port: int | None = None,
        metrics_port: int | None = None,
    ) -> None:
        self.liveness_port = liveness_port or free_port()
        self.metrics_port = metrics_port or free_port()
        self.argv = list(argv) if argv is not None else operator_argv(self.liveness_port, self.metrics_port)
        self.env = dict(env)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> Self:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        if wait:
            wait_for(self._alive, 60, what="the operator's liveness endpoint")
        return self

    def _alive(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, f"the operator exited:\n{self.log_tail()}"
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.liveness_port)) == 0

    def metrics(self) -> dict[str, float]:
        """The operator's Prometheus samples, by 'name{labels}'."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies or the OOM killer strikes."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 20) -> None:
        if self.proc:
            stop_child(self.proc, timeout)

    def log_tail(self, lines: int = 80) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
