"""The two worker implementations under test, each as local processes serving the worker REST contract.

Ours is one ``byoc-runtime`` process with ``--capacity N`` (its deployment shape: one pod, N sessions); so is
ours-before, the same runtime from another source tree (the before of a change, measured in the same run).
PyTrickle's ``StreamServer`` serves one stream at a time, so N sessions are N processes (its deployment shape:
one container per stream).
"""

from __future__ import annotations

import os
import re
import time
import urllib.request
from pathlib import Path

from byoc_testenv.devstream.worker import WorkerProcess, worker_health

from .pytrickle_env import ensure_venv

PYTRICKLE_WORKER = Path(__file__).with_name("pytrickle_worker.py")


class Workers:
    """Worker processes for up to ``sessions`` concurrent streams; session i is served at ``url(i)``."""

    def __init__(self, name: str, processes: list[WorkerProcess]) -> None:
        self.name = name
        self.processes = processes

    @classmethod
    def ours(
        cls,
        sessions: int,
        log_dir: Path,
        env: dict[str, str] | None = None,
        name: str = "ours",
        processor: str = "passthrough",
    ) -> Workers:
        proc = WorkerProcess.runtime(processor, log_dir / f"{name}.log", "--capacity", str(sessions), env=env)
        return cls(name, [proc])

    @classmethod
    def baseline(cls, sessions: int, log_dir: Path, tree: Path) -> Workers:
        """Our runtime from another source tree (its ``runtime/`` first on the path): the before of a change."""
        path = os.pathsep.join(p for p in (str(tree.resolve() / "runtime"), os.environ.get("PYTHONPATH", "")) if p)
        return cls.ours(sessions, log_dir, env={"PYTHONPATH": path}, name="ours-before")

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

    def rss_bytes(self) -> int:
        """Resident memory of the worker processes together, from /proc."""
        total = 0
        for proc in self.processes:
            if proc.proc is None:
                continue
            for line in Path(f"/proc/{proc.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        return total

    def metrics(self) -> dict[str, float]:
        """Our runtime's counters and stage-time sums from ``/metrics`` that the benchmark reports: ``stage:NAME``
        and ``stage_count:NAME`` (seconds, frames), ``dropped:REASON`` (video frames), ``gc_sum:GEN``,
        ``gc_count:GEN`` and ``gc_within_40ms:GEN`` (garbage collector pauses by generation). Empty for PyTrickle,
        which has no metrics endpoint."""
        if not self.name.startswith("ours"):
            return {}
        with urllib.request.urlopen(self.url(0) + "/metrics", timeout=10) as resp:
            text = resp.read().decode()
        found: dict[str, float] = {}
        for kind, stage, value in re.findall(r'byoc_stage_seconds_(sum|count)\{stage="([^"]+)"\} (\S+)', text):
            found[f"{'stage' if kind == 'sum' else 'stage_count'}:{stage}"] = float(value)
        for reason, value in re.findall(r'byoc_frames_dropped_total\{kind="video",reason="([^"]+)"\} (\S+)', text):
            found[f"dropped:{reason}"] = float(value)
        gc_pauses = r'byoc_gc_pause_seconds_(sum|count)\{generation="(\d)"\} (\S+)'
        for kind, generation, value in re.findall(gc_pauses, text):
            found[f"gc_{kind}:{generation}"] = float(value)
        within = r'byoc_gc_pause_seconds_bucket\{generation="(\d)",le="0.04"\} (\S+)'
        for generation, value in re.findall(within, text):
            found[f"gc_within_40ms:{generation}"] = float(value)
        return found

    def wait_idle(self, limit_s: float = 20.0) -> None:
        """Until every process reports IDLE again (the last streams have wound down)."""
        deadline = time.monotonic() + limit_s
        for proc in self.processes:
            while worker_health(proc.url) != "IDLE" and time.monotonic() < deadline:
                time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.processes:
            proc.stop()
