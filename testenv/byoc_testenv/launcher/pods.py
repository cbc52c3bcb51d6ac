"""The kubelet's part: a pod's containers as local processes, their probes, restarts and the pod status.

Each container whose image the image map knows runs as a process bound to the pod's IP (127.64.x.y): the
one liberty taken is telling it that address through an environment variable (``LocalImage.host_env``),
since there is no network namespace to give it. Everything else comes from the pod as a kubelet would take
it: command and args (``$(VAR)`` expanded), env with the downward API, ConfigMap and Secret references,
probes, ``restartPolicy``, ``terminationGracePeriodSeconds`` and ``preStop`` hooks (``hooks.py``). Containers
of other images are left to kwok.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp

from . import hooks
from .dns import DnsFiles
from .env import ConfigError, container_env, env_refs, expand
from .images import LocalImage
from .kube import KubeClient, KubeError
from .probes import Probe, ProbeLoop
from .volumes import PodVolumes

log = logging.getLogger(__name__)

Obj = dict[str, Any]
BACKOFF_START = 1.0
BACKOFF_MAX = 30.0
BACKOFF_RESET_AFTER = 60.0  # a container that ran this long starts its back-off afresh


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the launcher dies, so a killed run leaves no process behind."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _open_log(path: Path, header: str) -> BinaryIO:
    """The container's log file for appending (kept across restarts), with a line saying what started."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = open(path, "ab")  # the caller closes it once the child holds its own descriptor
    out.write(header.encode())
    out.flush()
    return out


@dataclass
class Settings:
    """What every pod runner shares."""

    client: KubeClient
    http: aiohttp.ClientSession
    dns: DnsFiles
    images: dict[str, LocalImage]
    root: Path
    max_probe_period: float | None = None
    base_env: dict[str, str] = field(default_factory=dict)


def command_line(container: Obj, image: LocalImage, env: dict[str, str], rewrite_dns: Callable[[str], str | None],
                 ) -> list[str]:
    """The argv a container runs, with its executable resolved here and DNS flags turned into files."""
    command = [expand(a, env) for a in container.get("command") or []]
    args = [expand(a, env) for a in container.get("args") or []]
    argv = (command or list(image.entrypoint)) + args
    if not argv:
        raise ConfigError("no command: neither the container nor the image map names one")
    exe = image.executable(argv[0])
    if exe is None:
        raise ConfigError(f"command {argv[0]!r} has no local executable in the image map")
    out = [exe]
    rest = iter(argv[1:])
    for arg in rest:
        flag, eq, value = arg.partition("=")
        if flag in image.dns_flags:
            value = value if eq else next(rest, "")
            path = rewrite_dns(value)
            out.append(f"{image.dns_flags[flag]}={path}" if path else f"{flag}={value}")
        else:
            out.append(arg)
    return out


class ContainerRunner:
    def __init__(self, pod: PodRunner, spec: Obj, image: LocalImage) -> None:
        self.pod = pod
        self.spec = spec
        self.image = image
        self.name: str = spec["name"]
        self.log_path = pod.log_dir / f"{self.name}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.ready = False
        self.started = False
        self.restart_count = 0
        self.running_since: str | None = None
        self.waiting: tuple[str, str] | None = ("ContainerCreating", "")
        self.last_terminated: Obj | None = None
        self.terminated: Obj | None = None  # final state when it will not run again
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            # Cancelled without stop() (the launcher is going down): never leave the process behind.
            if self.proc is not None and self.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
            raise

    async def _run(self) -> None:
        backoff = BACKOFF_START
        policy = (self.pod.pod.get("spec") or {}).get("restartPolicy", "Always")
        while not self._stopping:
            try:
                await self._start()
                if self._stopping and self.proc is not None:  # stop() came while it was starting
                    await self._kill(self.proc, self.pod.grace)
            except ConfigError as exc:
                self._waiting("CreateContainerConfigError", str(exc))
                log.warning("%s/%s: %s", self.pod.key, self.name, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            except OSError as exc:
                self._waiting("RunContainerError", str(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            began = time.monotonic()
            code = await self._supervise()
            ran = time.monotonic() - began
            finished = now_rfc3339()
            state = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                     "startedAt": self.running_since, "finishedAt": finished}
            self.proc, self.ready, self.started, self.running_since = None, False, False, None
            if self._stopping:
                self.terminated = state
                break
            log.info("%s/%s exited with %s after %.1fs", self.pod.key, self.name, code, ran)
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                self.terminated = state
                self.pod.changed()
                break
            self.last_terminated = state
            self.restart_count += 1
            if ran > BACKOFF_RESET_AFTER:
                backoff = BACKOFF_START
            self._waiting("CrashLoopBackOff", f"back-off {backoff:.0f}s restarting failed container={self.name} "
                          f"pod={self.pod.pod['metadata']['name']}")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _waiting(self, reason: str, message: str) -> None:
        self.waiting = (reason, message)
        self.pod.changed()

    async def _start(self) -> None:
        await self.pod.volumes.mounted()  # waits in ContainerCreating, as a kubelet does until volumes are set up
        pod = self.pod.pod
        env = container_env(pod, self.spec, await self.pod.env_sources())
        argv = command_line(self.spec, self.image, env, self.pod.rewrite_dns)
        full_env = self._process_env(env, argv)
        with _open_log(self.log_path, f"--- {now_rfc3339()} launcher: {' '.join(argv)}\n") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
                env=full_env, cwd=self.pod.log_dir, start_new_session=True, preexec_fn=_die_with_parent,
            )
        self.running_since, self.waiting = now_rfc3339(), None
        log.info("%s/%s started pid %d: %s", self.pod.key, self.name, self.proc.pid, " ".join(argv))
        self.pod.changed()

    async def _supervise(self) -> int:
        """Probe the running process until it exits; a failed startup or liveness probe kills it."""
        assert self.proc is not None
        proc = self.proc
        probes = asyncio.create_task(self._probe(proc))
        try:
            return await proc.wait()
        finally:
            probes.cancel()
            await asyncio.gather(probes, return_exceptions=True)

    async def _probe(self, proc: asyncio.subprocess.Process) -> None:
        settings, spec = self.pod.settings, self.spec
        period = settings.max_probe_period

        def loop(kind: str, initially: bool) -> ProbeLoop | None:
            if kind not in spec:
                return None
            return ProbeLoop(f"{self.pod.key}/{self.name} {kind}", Probe.from_spec(spec[kind], period), self.pod.ip,
                             spec, settings.http, initially)

        startup = loop("startupProbe", False)
        if startup is not None and not await startup.run(until_first_success=True):
            log.warning("%s/%s startup probe failed (%s): restarting", self.pod.key, self.name, startup.last)
            await self._kill(proc, self.pod.grace)
            return
        self.started = True
        self.pod.changed()
        readiness, liveness = loop("readinessProbe", False), loop("livenessProbe", True)
        tasks = [asyncio.create_task(p.run()) for p in (readiness, liveness) if p is not None]
        if readiness is None:
            self._set_ready(True)
        try:
            while True:
                watched = [p for p in (readiness, liveness) if p is not None]
                if not watched:
                    await asyncio.Event().wait()
                waiters = [asyncio.create_task(p.changed.wait()) for p in watched]
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
                for p in watched:
                    p.changed.clear()
                if readiness is not None:
                    self._set_ready(readiness.ok)
                if liveness is not None and not liveness.ok:
                    log.warning("%s/%s liveness probe failed (%s): restarting", self.pod.key, self.name, liveness.last)
                    self._set_ready(False)
                    await self._kill(proc, self.pod.grace)
                    return
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _set_ready(self, ready: bool) -> None:
        if ready != self.ready:
            self.ready = ready
            log.info("%s/%s %s", self.pod.key, self.name, "ready" if ready else "not ready")
            self.pod.changed()

    async def _kill(self, proc: asyncio.subprocess.Process, grace: float) -> None:
        """The preStop hook (bounded by the grace period), SIGTERM to the process group, SIGKILL once the grace
        is over."""
        if proc.returncode is not None:
            return
        hook = hooks.pre_stop(self.spec)
        if hook is not None:
            grace = await hooks.run_pre_stop(hook, grace, self._run_hook, f"{self.pod.key}/{self.name}")
            if proc.returncode is not None:
                return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            log.warning("%s/%s did not stop within %.0fs: SIGKILL", self.pod.key, self.name, grace)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        # Anything the process left in its group goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def _process_env(self, env: dict[str, str], argv: list[str]) -> dict[str, str]:
        """The container's environment as its process gets it, with the pod IP in the image's host variable."""
        full_env = {**self.pod.settings.base_env, "HOSTNAME": self.pod.pod["metadata"]["name"], **env}
        host_var = self.image.host_env.get(Path(argv[0]).name)
        if host_var:
            full_env[host_var] = self.pod.ip
        return full_env

    async def _run_hook(self, hook: Obj) -> str:
        if "httpGet" in hook:
            return await hooks.run_http(hook["httpGet"], self.pod.ip, self.spec, self.pod.settings.http)
        if "exec" in hook:
            env = container_env(self.pod.pod, self.spec, await self.pod.env_sources())
            # In the container: what its process sees, the address it listens on included.
            full_env = self._process_env(env, command_line(self.spec, self.image, env, self.pod.rewrite_dns))
            return await hooks.run_exec(list(hook["exec"].get("command") or []), full_env, self.pod.log_dir,
                                        self.log_path, self.image.executable)
        raise hooks.HookFailed(f"unknown hook {sorted(hook)}")

    async def stop(self, grace: float) -> None:
        self._stopping = True
        if self.proc is not None:
            await self._kill(self.proc, grace)

    # -- status ------------------------------------------------------------------------------------------

    def status(self) -> Obj:
        out: Obj = {"name": self.name, "image": self.spec.get("image", ""), "ready": self.ready,
                    "started": self.started, "restartCount": self.restart_count,
                    "imageID": f"{self.spec.get('image', '')}@sha256:0"}
        if self.running_since is not None:
            out["state"] = {"running": {"startedAt": self.running_since}}
            out["containerID"] = f"launcher://{self.proc.pid if self.proc else 0}"
        elif self.terminated is not None:
            out["state"] = {"terminated": self.terminated}
        else:
            reason, message = self.waiting or ("ContainerCreating", "")
            out["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        if self.last_terminated is not None:
            out["lastState"] = {"terminated": self.last_terminated}
        return out

    def to_json(self) -> Obj:
        return {"pid": self.proc.pid if self.proc else None, "ready": self.ready, "started": self.started,
                "restarts": self.restart_count, "log": str(self.log_path),
                "state": next(iter(self.status()["state"]))}


class PodRunner:
    """One pod's launched containers, and the status patches that report them."""

    def __init__(self, settings: Settings, pod: Obj, on_change: Callable[[], None]) -> None:
        self.settings = settings
        self.pod = pod
        meta = pod["metadata"]
        self.key = f"{meta['namespace']}/{meta['name']}"
        self.uid: str = meta["uid"]
        self.ip: str = pod["status"]["podIP"]
        self.log_dir = settings.root / "pods" / f"{meta['namespace']}_{meta['name']}_{self.uid[:8]}"
        self._on_change = on_change
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._sent: Obj | None = None
        self.volumes = PodVolumes(settings.client, pod, settings.root / "volumes" / self.log_dir.name)
        self.containers = [
            ContainerRunner(self, self.volumes.local_container(c), settings.images[c.get("image", "")])
            for c in (pod.get("spec") or {}).get("containers") or [] if c.get("image", "") in settings.images
        ]

    @property
    def grace(self) -> float:
        """The deletion's grace period, else the pod's. kwok force-deletes (grace 0) every pod as soon as its
        deletion starts, standing in for a kubelet that confirms termination, so a 0 means the pod's own."""
        meta, spec = self.pod["metadata"], self.pod.get("spec") or {}
        seconds = meta.get("deletionGracePeriodSeconds") or spec.get("terminationGracePeriodSeconds")
        return float(30 if seconds is None else seconds)

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._tasks = [asyncio.create_task(c.run(), name=f"{self.key}/{c.name}") for c in self.containers]
        self._tasks.append(asyncio.create_task(self._report(), name=f"{self.key} status"))
        self._tasks.append(asyncio.create_task(self.volumes.run(), name=f"{self.key} volumes"))
        self._dirty.set()  # report ContainerCreating at once: kwok may have said running, and volumes may wait

    def update(self, pod: Obj) -> None:
        """The latest object from the API (grace period, conditions to compare against). A watch event older
        than the answer to our own status patch is ignored (resourceVersions are etcd revisions here)."""
        new, have = pod["metadata"].get("resourceVersion", ""), self.pod["metadata"].get("resourceVersion", "")
        if new.isdigit() and have.isdigit() and int(new) < int(have):
            return
        self.pod = pod
        self._dirty.set()

    async def stop(self, grace: float | None = None) -> None:
        grace = self.grace if grace is None else grace
        await asyncio.gather(*(c.stop(grace) for c in self.containers), return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.volumes.remove()
        log.info("%s stopped", self.key)

    def changed(self) -> None:
        self._dirty.set()
        self._on_change()

    def rewrite_dns(self, name: str) -> str | None:
        path = self.settings.dns.pods_file(name, self.pod["metadata"]["namespace"])
        return None if path is None else str(path)

    async def env_sources(self) -> dict[tuple[str, str], dict[str, str]]:
        """The data of the ConfigMaps and Secrets the pod's env refers to (missing ones left out)."""
        import base64

        ns = self.pod["metadata"]["namespace"]
        out: dict[tuple[str, str], dict[str, str]] = {}
        for kind, name in env_refs(self.pod):
            plural = "configmaps" if kind == "ConfigMap" else "secrets"
            try:
                obj = await self.settings.client.get(f"/api/v1/namespaces/{ns}/{plural}/{name}")
            except KubeError as exc:
                if exc.status == 404:
                    continue
                raise ConfigError(f"{kind.lower()} {name}: {exc}") from exc
            data = dict(obj.get("data") or {})
            if kind == "Secret":
                data = {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
            out[(kind, name)] = data
        return out

    # -- status ------------------------------------------------------------------------------------------

    def desired_status(self) -> Obj:
        """containerStatuses (the whole list: it is atomic) and the Ready/ContainersReady conditions."""
        current = self.pod.get("status") or {}
        ours = {c.name: c for c in self.containers}
        theirs = {s["name"]: s for s in current.get("containerStatuses") or []}
        statuses = []
        for spec in (self.pod.get("spec") or {}).get("containers") or []:
            name = spec["name"]
            if name in ours:
                statuses.append(ours[name].status())
            elif name in theirs:
                statuses.append(theirs[name])
        containers_ready = all(s.get("ready") for s in statuses) and len(statuses) == len(
            (self.pod.get("spec") or {}).get("containers") or [])
        gates = [g["conditionType"] for g in (self.pod.get("spec") or {}).get("readinessGates") or []]
        conds = {c["type"]: c for c in current.get("conditions") or []}
        ready = containers_ready and all((conds.get(g) or {}).get("status") == "True" for g in gates)
        not_ready = [s["name"] for s in statuses if not s.get("ready")]
        conditions = []
        for type_, value in (("ContainersReady", containers_ready), ("Ready", ready)):
            status = "True" if value else "False"
            cond: Obj = {"type": type_, "status": status}
            old = conds.get(type_) or {}
            cond["lastTransitionTime"] = old.get("lastTransitionTime") if old.get("status") == status else None
            if not value:
                cond["reason"] = "ContainersNotReady"
                cond["message"] = f"containers with unready status: [{' '.join(not_ready)}]"
            conditions.append(cond)
        return {"containerStatuses": statuses, "conditions": conditions}

    def _needs_patch(self, desired: Obj) -> bool:
        current = self.pod.get("status") or {}
        conds = {c["type"]: c for c in current.get("conditions") or []}
        for cond in desired["conditions"]:
            if (conds.get(cond["type"]) or {}).get("status") != cond["status"]:
                return True
        strip = lambda statuses: [  # noqa: E731 - compare what we set, not what the API server adds
            {k: s.get(k) for k in ("name", "ready", "started", "restartCount", "state")} for s in statuses or []]
        return strip(current.get("containerStatuses")) != strip(desired["containerStatuses"])

    async def _report(self) -> None:
        """Patch the pod status whenever it differs from what the containers say (coalescing bursts)."""
        backoff = 0.2
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            desired = self.desired_status()
            if not self._needs_patch(desired) or desired == self._sent:
                continue
            stamp = now_rfc3339()
            for cond in desired["conditions"]:
                cond["lastTransitionTime"] = cond["lastTransitionTime"] or stamp
            ns, name = self.key.split("/", 1)
            try:
                self.pod = await self.settings.client.patch_status(ns, name, desired)
                self._sent, backoff = desired, 0.2
            except (KubeError, aiohttp.ClientError, TimeoutError) as exc:
                if isinstance(exc, KubeError) and exc.status == 404:
                    return  # the pod is gone; the launcher stops this runner
                log.warning("%s: status patch failed (%s); retrying", self.key, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                self._dirty.set()

    def to_json(self) -> Obj:
        return {"uid": self.uid, "ip": self.ip, "logs": str(self.log_dir),
                "containers": {c.name: c.to_json() for c in self.containers}}
