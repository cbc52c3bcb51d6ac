"""``Launcher``: the launcher in its own process, for tests and the demo.

    images = runtime_images("registry.local/byoc-runtime:test")
    with Cluster.start(extra_stages=launcher_stages(images)) as cluster, \\
         Launcher.start(cluster, image_map=images) as launcher:
        ...  # launcher.hosts_file, launcher.resolve("x.ns.svc"), launcher.state(), launcher.logs("ns/pod")

The child exits when this process does (it watches its stdin) and stops every process it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from byoc_testenv.polling import read_first_line, stop_child

from .dns import resolve_hosts
from .images import LocalImage, dump_image_map, runtime_images


class LauncherError(RuntimeError):
    pass


class Launcher:
    def __init__(self, proc: subprocess.Popen[bytes], root: Path, hosts_file: Path, log_path: Path,
                 remove_root: bool) -> None:
        self.proc = proc
        self.root = root
        self.hosts_file = hosts_file
        self.log_path = log_path
        self._remove_root = remove_root

    @classmethod
    def start(cls, cluster: Any, *, image_map: Mapping[str, LocalImage] | None = None, root: Path | None = None,
              max_probe_period: float | None = 1.0, startup_timeout: float = 60.0,
              log_level: str = "INFO") -> Launcher:
        """Start watching ``cluster`` (a Cluster, or a kubeconfig path). ``image_map`` defaults to the
        operator's default runtime image; ``root`` (logs, DNS files, state.json) to ``<cluster home>/launcher``
        or a temp dir removed at stop. Probes run at least every ``max_probe_period`` seconds (None: as the
        pods say), keeping each probe's failure time budget."""
        kubeconfig = Path(getattr(cluster, "kubeconfig", cluster))
        remove_root = False
        if root is None:
            home = getattr(cluster, "home", None)
            if home:
                root = Path(home) / "launcher"
            else:
                root, remove_root = Path(tempfile.mkdtemp(prefix="byoc-launcher-")), True
        root.mkdir(parents=True, exist_ok=True)
        images_file = root / "images.json"
        images_file.write_text(dump_image_map(dict(image_map) if image_map is not None else runtime_images()))
        log_path = root / "launcher.log"
        cmd = [sys.executable, "-m", "byoc_testenv.launcher", "--kubeconfig", str(kubeconfig),
               "--image-map", str(images_file), "--root", str(root), "--exit-on-stdin-eof", "--log-level", log_level]
        if max_probe_period is not None:
            cmd += ["--max-probe-period", str(max_probe_period)]
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        line = read_first_line(proc, startup_timeout)
        if not line.startswith("ready "):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
            raise LauncherError(f"launcher did not start:\n{line}{log_path.read_text(errors='replace')[-4000:]}")
        fields = dict(part.split("=", 1) for part in line.split()[1:])
        return cls(proc, root, Path(fields["hosts"]), log_path, remove_root)

    # -- what it knows -----------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """``state.json``: pods ("ns/name" -> ip, containers with pid/ready/restarts/log) and services
        ("ns/name" -> clusterIP, ready IPs, endpoints per port)."""
        try:
            return json.loads((self.root / "state.json").read_text())
        except (OSError, ValueError):
            return {"pods": {}, "services": {}}

    def resolve(self, host: str) -> list[str]:
        """Addresses of a Service name (``svc.ns.svc``) from the hosts file."""
        return resolve_hosts(self.hosts_file, host)

    def logs(self, pod: str, container: str | None = None, lines: int = 40) -> str:
        """The tail of a launched pod's log ("ns/name"; the first container by default)."""
        entry = self.state()["pods"].get(pod)
        if not entry:
            return ""
        containers = entry["containers"]
        path = Path(containers[container or next(iter(containers))]["log"])
        with contextlib.suppress(OSError):
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # -- lifecycle ---------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM: the launcher stops its processes (SIGTERM, then SIGKILL after a grace period) and exits."""
        stop_child(self.proc, timeout)
        if self._remove_root and not os.environ.get("BYOC_TESTENV_KEEP_LOGS"):
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

