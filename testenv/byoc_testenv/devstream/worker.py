"""A worker in a subprocess on a free port, and its health."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from byoc_testenv.polling import free_port


def http_json(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """A small blocking JSON request (the REST calls are few; media goes through aiohttp)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def worker_health(base_url: str) -> str | None:
    try:
        status, body = http_json("GET", base_url + "/health")
    except OSError:
        return None
    return body.get("status") if status == 200 and isinstance(body, dict) else None


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies (Linux), so a killed run leaves no worker."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class WorkerProcess:
    """A worker process on 127.0.0.1 (``byoc-runtime``, or any command serving the worker REST contract).

    ``argv`` gets ``{port}`` substituted; stdout and stderr go to ``log_path``.
    """

    def __init__(self, argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def runtime(cls, processor: str, log_path: Path, *extra: str, env: dict[str, str] | None = None) -> WorkerProcess:
        """``byoc-runtime`` (run as ``python -m byoc_runtime.main`` so no console script is needed)."""
        argv = [
            sys.executable,
            "-m",
            "byoc_runtime.main",
            "--processor",
            processor,
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            *extra,
        ]
        # A module:Class processor is usually importable from where the command runs.
        path = os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH", "")) if p)
        return cls(argv, log_path, env={**os.environ, "PYTHONPATH": path, **(env or {})})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, limit_s: float = 120.0) -> None:
        """Start and wait until ``/health`` says IDLE (model loaded)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, preexec_fn=_die_with_parent
            )
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            if worker_health(self.url) in ("IDLE", "OK"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker not IDLE after {limit_s:.0f} s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (all its threads), from /proc."""
        if self.proc is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, limit_s: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(limit_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> WorkerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
