"""The two worker implementations under test, each as local processes serving the worker REST contract.

Ours is one ``byoc-runtime`` process with ``--capacity N`` (its deployment shape: one pod, N sessions).
PyTrickle's ``StreamServer`` serves one stream at a time, so N sessions are N processes (its deployment shape:
one container per stream).
"""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path

from byoc_testenv.devstream import WorkerProcess, worker_health

from .pytrickle_env import ensure_venv

PYTRICKLE_WORKER = Path(__file__).with_name("pytrickle_worker.py")


class Workers:
    """Worker processes for up to ``sessions`` concurrent streams; session i is served at ``url(i)``."""

    def __init__(self, name: str, processes: list[WorkerProcess]) -> None:
        self.name = name
        self.processes = processes

    @classmethod
    def ours(cls, sessions: int, log_dir: Path, omp_passive: bool = False) -> Workers:
        # OMP_WAIT_POLICY=PASSIVE stops torch's idle OpenMP threads from spin-waiting (see analysis.md).
        name = "ours-passive" if omp_passive else "ours"
        env = {"OMP_WAIT_POLICY": "PASSIVE"} if omp_passive else None
        proc = WorkerProcess.runtime("passthrough", log_dir / f"{name}.log", "--capacity", str(sessions), env=env)
        return cls(name, [proc])

    @classmethod
    def pytrickle(cls, sessions: int, log_dir: Path) -> Workers:
        python = ensure_venv()
        procs = [
            WorkerProcess([str(python), str(PYTRICKLE_WORKER), "--port", "{port}"], log_dir / f"pytrickle-{i}.log")
            for i in range(sessions)
        ]
        return cls("pytrickle", procs)

    def url(self, session: int) -> str:
        return self.processes[session % len(self.processes)].url

    def start(self) -> None:
        for proc in self.processes:
            proc.start()

    def cpu_seconds(self) -> float:
        return sum(proc.cpu_seconds() for proc in self.processes)

    def stage_seconds(self) -> dict[str, tuple[float, float]]:
        """Our runtime's per-stage timing histograms from ``/metrics``: stage -> (sum seconds, count).
        Empty for PyTrickle, which has no metrics endpoint."""
        if not self.name.startswith("ours"):
            return {}
        with urllib.request.urlopen(self.url(0) + "/metrics", timeout=10) as resp:
            text = resp.read().decode()
        found: dict[str, list[float]] = {}
        for kind, stage, value in re.findall(r'byoc_stage_seconds_(sum|count)\{stage="([^"]+)"\} (\S+)', text):
            found.setdefault(stage, [0.0, 0.0])[0 if kind == "sum" else 1] = float(value)
        return {stage: (v[0], v[1]) for stage, v in found.items()}

    def wait_idle(self, limit_s: float = 20.0) -> None:
        """Until every process reports IDLE again (the last streams have wound down)."""
        deadline = time.monotonic() + limit_s
        for proc in self.processes:
            while worker_health(proc.url) != "IDLE" and time.monotonic() < deadline:
                time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.processes:
            proc.stop()
