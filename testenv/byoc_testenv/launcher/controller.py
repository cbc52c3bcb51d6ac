"""The launcher's control loop: watch Pods and Services, run the pods it can, keep the proxy and DNS files
current, and write ``state.json`` (what runs where) for tests and people."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import aiohttp

from .dns import DnsFiles
from .images import LocalImage
from .kube import Informer, KubeClient, KubeConfig
from .pods import PodRunner, Settings
from .proxy import ServiceProxy
from .services import service_views

log = logging.getLogger(__name__)

Obj = dict[str, Any]
SHUTDOWN_GRACE = 10.0  # seconds each process gets when the launcher itself stops


def launchable(pod: Obj, images: dict[str, LocalImage]) -> bool:
    """Scheduled, has its IP, Running, not being deleted, and some container's image runs here."""
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    return (not meta.get("deletionTimestamp") and bool(spec.get("nodeName")) and bool(status.get("podIP"))
            and status.get("phase") == "Running"
            and any(c.get("image", "") in images for c in spec.get("containers") or []))


def inherited_config(name: str) -> bool:
    """Variables of the launcher's own environment a pod must not inherit: its cluster access, and the runtime's
    and router's settings (``BYOC_*``), which only the pod spec may set. PATH, HOME and the like pass, as an
    image's environment would provide them."""
    return name == "KUBECONFIG" or (name.startswith("BYOC_") and not name.startswith("BYOC_TESTENV_"))


class LauncherController:
    def __init__(self, kubeconfig: str | os.PathLike[str], images: dict[str, LocalImage], root: Path,
                 max_probe_period: float | None = None) -> None:
        self.kubeconfig = Path(kubeconfig)
        self.images = images
        self.root = root
        self.max_probe_period = max_probe_period
        self.runners: dict[str, PodRunner] = {}  # pod uid -> runner
        self.proxy = ServiceProxy()
        self.dns = DnsFiles(root / "dns")
        self.state_file = root / "state.json"
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.terminating: dict[str, PodRunner] = {}  # pod uid -> runner whose processes are stopping
        self._stopping: set[asyncio.Task[None]] = set()
        self._client: KubeClient | None = None
        self._http: aiohttp.ClientSession | None = None
        self._settings: Settings | None = None
        self.pods: Informer | None = None
        self.services: Informer | None = None

    @property
    def hosts_file(self) -> Path:
        return self.dns.hosts_file

    async def start(self, sync_timeout: float = 60.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._client = KubeClient(KubeConfig.load(self.kubeconfig))
        # Probes open a fresh connection each time, as the kubelet does.
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        base_env = {k: v for k, v in os.environ.items() if not inherited_config(k)}
        self._settings = Settings(self._client, self._http, self.dns, self.images, self.root,
                                  self.max_probe_period, base_env)
        self.pods = Informer(self._client, "/api/v1/pods", self._changed)
        self.services = Informer(self._client, "/api/v1/services", self._changed)
        self._tasks = [asyncio.create_task(self.pods.run(), name="watch pods"),
                       asyncio.create_task(self.services.run(), name="watch services"),
                       asyncio.create_task(self._loop(), name="reconcile")]
        await asyncio.wait_for(asyncio.gather(self.pods.synced.wait(), self.services.synced.wait()), sync_timeout)
        await self.reconcile()

    def _changed(self) -> None:
        self._dirty.set()

    async def _loop(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(0.05)  # let a burst of watch events land first
            self._dirty.clear()
            try:
                await self.reconcile()
            except Exception:
                log.exception("reconcile failed")

    async def reconcile(self) -> None:
        assert self.pods is not None and self.services is not None and self._settings is not None
        pods = list(self.pods.items.values())
        wanted = {p["metadata"]["uid"]: p for p in pods if launchable(p, self.images)}
        current = {p["metadata"]["uid"]: p for p in pods}
        for uid in [u for u in self.runners if u not in wanted]:
            runner = self.runners.pop(uid)
            pod = current.get(uid)
            if pod is not None:
                runner.update(pod)  # its deletion grace period
            log.info("pod %s went away: stopping it", runner.key)
            self.terminating[uid] = runner
            task = asyncio.create_task(self._terminate(uid, runner))
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)
        # kwok hands a deleted pod's IP to the next pod at once, while the old processes may still be draining
        # on it (a kubelet would hold the IP until the old sandbox is gone): the new pod waits for them.
        held_ips = {r.ip for r in self.terminating.values()}
        for uid, pod in wanted.items():
            running = self.runners.get(uid)
            if running is not None:
                running.update(pod)
            elif pod["status"]["podIP"] not in held_ips:  # else started once _terminate() of the old pod ends
                self.runners[uid] = PodRunner(self._settings, pod, self._changed)
                self.runners[uid].start()
        views = service_views(self.services.items.values(), pods)
        await self.proxy.update(views)
        self.dns.update({v.key: v.cluster_ip for v in views if v.cluster_ip},
                        {v.key: list(v.ready_ips) for v in views if v.cluster_ip is None})
        self._write_state(views)

    async def _terminate(self, uid: str, runner: PodRunner) -> None:
        try:
            await runner.stop()
        finally:
            self.terminating.pop(uid, None)
            self._changed()

    def _write_state(self, views: list[Any]) -> None:
        pods = {r.key: {**r.to_json(), "terminating": True} for r in self.terminating.values()}
        pods.update({r.key: {**r.to_json(), "terminating": False} for r in self.runners.values()})
        state = {
            "hosts": str(self.hosts_file),
            "pods": pods,
            "services": {f"{v.namespace}/{v.name}": v.to_json() for v in views},
        }
        tmp = self.state_file.with_name(".state.json.tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        os.replace(tmp, self.state_file)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        runners, self.runners = list(self.runners.values()), {}
        await asyncio.gather(*(r.stop(min(r.grace, SHUTDOWN_GRACE)) for r in runners), return_exceptions=True)
        await asyncio.gather(*self._stopping, return_exceptions=True)
        await self.proxy.close()
        with contextlib.suppress(OSError):
            self._write_state([])
        if self._http is not None:
            await self._http.close()
        if self._client is not None:
            await self._client.close()
