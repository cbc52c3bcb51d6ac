"""``OrchestratorProcess``: the test orchestrator in its own process, for end-to-end tests.

    with OrchestratorProcess.start(secret="s3cret", trickle_base_url=trickle.base_url) as orch:
        ...  # orch.url, orch.ca_file (with tls=True)

The child exits when this process does (it watches its stdin), so a killed test run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from byoc_testenv.polling import read_first_line, stop_child


class OrchestratorProcessError(RuntimeError):
    pass


def orchestrator_spec(url: str, secret_name: str, key: str | None = None) -> dict[str, Any]:
    """An orchestrator with its secret, as a BYOCWorker's ``orchestrators[]`` entry or a BYOCOrchestrator's spec.
    The test orchestrator serves plain http unless started with ``tls=True`` (go-livepeer's always serve https),
    and the API server refuses a secret for an http url unless the entry allows plaintext: an http url gets
    ``tls.allowPlaintext``."""
    entry: dict[str, Any] = {"url": url, "secretRef": {"name": secret_name, **({"key": key} if key else {})}}
    if url.startswith("http://"):
        entry["tls"] = {"allowPlaintext": True}
    return entry


def fleet_secret_data(url: str, secret: str) -> dict[str, str]:
    """A fleet Secret's stringData (keys the operator reads): plaintext allowed for an http url, as above."""
    return {"url": url, "secret": secret, **({"allowPlaintext": "true"} if url.startswith("http://") else {})}


class OrchestratorProcess:
    def __init__(
        self, proc: subprocess.Popen[bytes], url: str, ca_file: Path | None, log_path: Path, secret_file: Path
    ):
        self.proc = proc
        self.url = url
        self.ca_file = ca_file
        self.log_path = log_path
        self._secret_file = secret_file
        self.trickle_base_url: str | None = None
        self.cli_url = ""  # the CLI port (POST /registerLiveRunners)

    @classmethod
    def start(
        cls,
        *,
        secret: str = "orch-secret",
        port: int = 0,
        trickle_base_url: str | None = None,
        tls: bool = False,
        heartbeat_interval: float = 5.0,
        heartbeat_ttl: float = 20.0,
        health_interval: float = 5.0,
        health_timeout: float = 3.0,
        hosts_file: str | os.PathLike[str] | None = None,
        onchain_prices: bool = False,
        extra_args: list[str] | None = None,
        startup_timeout: float = 30.0,
    ) -> OrchestratorProcess:
        fd, secret_name = tempfile.mkstemp(prefix="orch-secret-")
        os.write(fd, secret.encode())
        os.close(fd)
        fd, log_name = tempfile.mkstemp(prefix="test-orchestrator-", suffix=".log")
        os.close(fd)
        cmd = [
            sys.executable, "-m", "byoc_testenv.orchestrator", "--port", str(port), "--secret-file", secret_name,
            "--exit-on-stdin-eof", "--heartbeat-interval", str(heartbeat_interval),
            "--heartbeat-ttl", str(heartbeat_ttl), "--health-interval", str(health_interval),
            "--health-timeout", str(health_timeout),
        ]  # fmt: skip
        if trickle_base_url:
            cmd += ["--trickle-base-url", trickle_base_url]
        if tls:
            cmd.append("--tls")
        if hosts_file:
            cmd += ["--hosts-file", str(hosts_file)]
        if onchain_prices:
            cmd.append("--onchain-prices")
        cmd += extra_args or []
        with open(log_name, "ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        line = read_first_line(proc, startup_timeout)
        if not line.startswith("url="):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
            Path(secret_name).unlink(missing_ok=True)
            raise OrchestratorProcessError(f"test orchestrator did not start:\n{line}{Path(log_name).read_text()}")
        fields = dict(part.split("=", 1) for part in line.split())
        ca = Path(fields["ca"]) if "ca" in fields else None
        orch = cls(proc, fields["url"], ca, Path(log_name), Path(secret_name))
        orch.cli_url = fields.get("cli", "")
        orch.trickle_base_url = trickle_base_url
        return orch

    def worker_ref(self, secret_name: str) -> dict[str, Any]:
        """This orchestrator as a BYOCWorker's ``orchestrators[]`` entry. go-livepeer serves its trickle channels on
        its own address; this one's are on a separate trickle server, which is named as a channel origin."""
        ref = orchestrator_spec(self.url, secret_name)
        if self.trickle_base_url:
            parts = urlsplit(self.trickle_base_url)
            ref["channelOrigins"] = [f"{parts.scheme}://{parts.netloc}"]
        return ref

    def read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 5.0) -> None:
        stop_child(self.proc, timeout)
        self._secret_file.unlink(missing_ok=True)
        if not os.environ.get("BYOC_TESTENV_KEEP_LOGS"):
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> OrchestratorProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

