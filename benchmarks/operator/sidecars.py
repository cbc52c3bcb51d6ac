"""The kubelet's part in Live Runner dynamic mode, for a fleet of kwok pods: run each pod's registrar sidecar.

kwok pods run no containers, and a thousand real sidecar processes (about 40 MB of Python each) do not fit the
benchmark machine, so a shard process stands in for the kubelets. It watches the pods of a namespace and, for
each pod whose spec has the `byoc-registrar` container the operator renders, runs the REAL registrar
(`byoc_edge.registrar.Registrar`) as an asyncio task:

- configured from that container's own args and env, with the downward API resolved from the pod (POD_IP,
  POD_NAME) and the Secret volumes it mounts copied from the API server into local files;
- started once the pod runs with an IP, drained (what the worker's preStop hook asks of it through `/drain`)
  as soon as the pod is deleted;
- polling a stand-in worker served by the shard at `/pods/{name}/...`: `/health` says IDLE while the pod is
  Ready (what the kubelet's readiness probe saw) and LOADING before, with no stream running.

With `--serve-pod-ips` the shard also answers that `/health` on each Ready pod's own IP and worker port (kwok pod
IPs are loopback addresses), for every pod of the namespace: what Live Runner static mode needs, where the
orchestrators poll each runner's health themselves.

Differences from real sidecars, none on the orchestrator side of the wire: the registrar serves no port of its own
(its `/drain` is called directly), and the shard builds one TLS context for all its registrars instead of one
each (about 20 ms of CPU per pod that a real pod spends on its own core while its model loads).

    python -m benchmarks.operator.sidecars --namespace NS [--shard 0/2] [--serve-pod-ips] [--kubeconfig PATH]

prints `url=http://127.0.0.1:PORT` once serving; `GET /_bench/stats` gives each pod's timings (monotonic clock,
shared by the processes of this machine) and the heartbeats sent. `SidecarProcess` starts one from a benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import psutil
from aiohttp import web
from byoc_edge.registrar.config import OrchestratorTLS, RegistrarConfig, default_runner_url, load_config
from byoc_edge.registrar.registrar import Registrar
from byoc_edge.registrar.registration import Registration
from byoc_testenv.polling import read_first_line, stop_child
from lightkube import AsyncClient, KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.models.core_v1 import Container
from lightkube.resources.core_v1 import Pod, Secret
from lightkube.types import on_error_retry

ROOT = Path(__file__).resolve().parents[2]
REGISTRAR_COMMAND = "byoc-registrar"
VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
DEFAULT_WORKER_URL = str(RegistrarConfig.model_fields["worker_url"].default)
FIELD_REFS = {
    "metadata.name": lambda pod: pod.metadata.name,
    "metadata.namespace": lambda pod: pod.metadata.namespace,
    "status.podIP": lambda pod: pod.status.podIP if pod.status else None,
}

log = logging.getLogger("benchmarks.operator.sidecars")


# -- a pod's registrar container -> the registrar's argv and environment (pure) -----------------------------


def registrar_container(pod: Pod) -> Container | None:
    for container in pod.spec.containers if pod.spec else []:
        if (container.command or [""])[0] == REGISTRAR_COMMAND:
            return container
    return None


def worker_port(pod: Pod) -> int | None:
    """The port named `http` (the worker's REST API) of the pod's first container that has one."""
    for container in pod.spec.containers if pod.spec else []:
        for port in container.ports or []:
            if port.name == "http":
                return port.containerPort
    return None


def pod_ready(pod: Pod) -> bool:
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def downward_env(pod: Pod, container: Container) -> dict[str, str]:
    """The container's environment as the kubelet would set it (values and downward-API field refs)."""
    env: dict[str, str] = {}
    for var in container.env or []:
        ref = var.valueFrom.fieldRef if var.valueFrom else None
        if ref is not None and ref.fieldPath in FIELD_REFS:
            env[var.name] = FIELD_REFS[ref.fieldPath](pod) or ""
        elif var.valueFrom is not None:
            raise ValueError(f"env {var.name}: only values and fields {sorted(FIELD_REFS)} are stood in for")
        else:
            env[var.name] = var.value or ""
    return env


def mounted_secret_files(pod: Pod, container: Container) -> dict[str, tuple[str, str]]:
    """Path in the container -> (Secret name, key), for each Secret item the container mounts."""
    secrets = {v.name: v.secret for v in (pod.spec.volumes if pod.spec else None) or [] if v.secret}
    files: dict[str, tuple[str, str]] = {}
    for mount in container.volumeMounts or []:
        secret = secrets.get(mount.name)
        if secret is None:
            continue
        if not secret.items:
            raise ValueError(f"volume {mount.name}: a whole-Secret mount is not stood in for (name its items)")
        for item in secret.items:
            files[f"{mount.mountPath.rstrip('/')}/{item.path}"] = (secret.secretName, item.key)
    return files


def expand(arg: str, env: dict[str, str]) -> str:
    """The kubelet's `$(VAR)` expansion in args: a defined variable is replaced, `$$` escapes a `$`."""
    return VAR_REF.sub(lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), arg)


def joined_flags(args: list[str]) -> list[str]:
    """`--flag value` as `--flag=value`, so each flag is one token."""
    out: list[str] = []
    for arg in args:
        if out and out[-1].startswith("--") and "=" not in out[-1] and not arg.startswith("--"):
            out[-1] += "=" + arg
        else:
            out.append(arg)
    return out


def registrar_argv(args: list[str], env: dict[str, str], files: dict[str, str], worker_url: str) -> list[str]:
    """The sidecar's args pointed at the stand-in worker and at local copies of its Secret files, with the runner
    URL it would have derived from the pod's own worker port, and no port of its own. `env` is the container's."""
    flags = joined_flags([expand(arg, env) for arg in args])
    pod_worker_url = next((f.split("=", 1)[1] for f in flags if f.startswith("--worker-url=")), DEFAULT_WORKER_URL)
    out = []
    for flag in flags:
        name, sep, value = flag.partition("=")
        if name not in ("--worker-url", "--port"):
            out.append(f"{name}{sep}{files.get(value, value)}")
    if not any(f.startswith("--runner-url=") for f in flags) and env.get("POD_IP"):
        out.append("--runner-url=" + default_runner_url(pod_worker_url, env["POD_IP"]))
    return [*out, f"--worker-url={worker_url}", "--port=0"]


def shard_of(name: str, shards: int) -> int:
    return zlib.crc32(name.encode()) % shards


# -- the registrars ---------------------------------------------------------------------------------------


class TimedRegistrar(Registrar):
    """The real registrar, noting when every orchestrator first accepted a "ready" heartbeat, and counting; with
    one SSL context per orchestrator trust setting for the whole shard, not one per registration."""

    _contexts: ClassVar[dict[OrchestratorTLS, ssl.SSLContext]] = {}

    def ssl_context(self, tls: OrchestratorTLS) -> ssl.SSLContext:
        if tls not in self._contexts:
            self._contexts[tls] = super().ssl_context(tls)
        return self._contexts[tls]

    def __init__(self, config: RegistrarConfig, beats: Counter[tuple[str, str]]) -> None:
        super().__init__(config)
        self.beats = beats
        self.advertised_at: float | None = None
        self._ready_at: set[str] = set()

    async def beat(self, registration: Registration) -> None:
        ready = self.worker is not None and self.worker.state.ready
        await super().beat(registration)
        ok = registration.registered and not registration.last_error
        self.beats[(registration.url, "ok" if ok else "failed")] += 1
        if ok and ready:
            self._ready_at.add(registration.url)
            if self.advertised_at is None and len(self._ready_at) == len(self.registrations):
                self.advertised_at = time.monotonic()


@dataclass
class PodSidecar:
    ready: bool = False
    ready_at: float | None = None  # first seen Ready
    registrar: TimedRegistrar | None = None
    task: asyncio.Task[None] | None = None
    deleted_at: float | None = None  # deletion seen: drain starts
    unregistered_at: float | None = None  # drained and unregistered everywhere
    site: web.SockSite | None = None  # /health on the pod's own IP (--serve-pod-ips)
    ip: str = ""
    error: str = ""

    def times(self) -> dict[str, Any]:
        return {
            "ready_at": self.ready_at,
            "advertised_at": self.registrar.advertised_at if self.registrar else None,
            "deleted_at": self.deleted_at,
            "unregistered_at": self.unregistered_at,
            "error": self.error,
        }


class Shard:
    """The pods of one namespace whose name hashes to this shard, each with its registrar."""

    def __init__(self, client: AsyncClient, namespace: str, index: int, count: int, secrets_dir: Path) -> None:
        self.client = client
        self.pod_ips: web.AppRunner | None = None  # serves /health on each Ready pod's IP when set
        self.by_ip: dict[str, PodSidecar] = {}
        self._stopping: dict[str, asyncio.Task[None]] = {}  # pod-IP sites closing
        self.pod_ip_checks = 0
        self.namespace = namespace
        self.index = index
        self.count = count
        self.secrets_dir = secrets_dir
        self.worker_base = ""  # the stand-in worker, set once it serves
        self.pods: dict[str, PodSidecar] = {}
        self.beats: Counter[tuple[str, str]] = Counter()
        self._secret_files: dict[tuple[str, str], str] = {}

    async def watch(self) -> None:
        async for event, pod in self.client.watch(Pod, namespace=self.namespace, on_error=on_error_retry):
            name = pod.metadata.name
            if shard_of(name, self.count) != self.index:
                continue
            if event == "DELETED" or pod.metadata.deletionTimestamp:
                self.gone(name)
            else:
                await self.seen(pod)

    async def seen(self, pod: Pod) -> None:
        name = pod.metadata.name
        container = registrar_container(pod)
        if container is None and self.pod_ips is None:
            return
        record = self.pods.setdefault(name, PodSidecar())
        if record.deleted_at is not None:
            return
        ready = pod_ready(pod)
        if ready and record.ready_at is None:
            record.ready_at = time.monotonic()
        record.ready = ready
        ip = pod.status.podIP if pod.status else None
        if ready and ip and self.pod_ips is not None and record.site is None and not record.error:
            await self._serve_on_pod_ip(record, ip, worker_port(pod))
        if container is not None and record.registrar is None and not record.error and ip:
            try:
                config = await self.config_for(pod, container)
            except (ValueError, ApiError, OSError) as exc:  # one bad pod never stops the others
                record.error = str(exc)
                log.error("pod %s: no registrar: %s", name, exc)
                return
            record.registrar = TimedRegistrar(config, self.beats)
            record.task = asyncio.create_task(self._run(name, record), name=f"registrar {name}")

    def gone(self, name: str) -> None:
        record = self.pods.get(name)
        if record is None or record.deleted_at is not None:
            return
        record.deleted_at = time.monotonic()
        self._end(record, hurry=False)
        if record.site is not None and record.ip:  # the pod's containers stop: its IP answers no more
            self.by_ip.pop(record.ip, None)
            self._stopping[record.ip] = asyncio.create_task(record.site.stop())

    async def _serve_on_pod_ip(self, record: PodSidecar, ip: str, port: int | None) -> None:
        assert self.pod_ips is not None
        if port is None:
            record.error = "no container port named http"
            return
        if ip in self._stopping:  # a deleted pod had this IP a moment ago
            await self._stopping.pop(ip)
        sock = socket.socket()
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((ip, port))
            record.site = web.SockSite(self.pod_ips, sock)
            await record.site.start()
        except OSError as exc:  # e.g. the address taken by another cluster's launcher on this machine
            sock.close()
            record.error = f"cannot serve {ip}:{port}: {exc}"
            log.error("%s", record.error)
            return
        record.ip = ip
        self.by_ip[ip] = record

    @staticmethod
    def _end(record: PodSidecar, *, hurry: bool) -> None:
        registrar, task = record.registrar, record.task
        if registrar is None or task is None or task.done():
            return
        if registrar.worker is None:  # run() has not begun: nothing registered yet, nothing to drain
            task.cancel()
            record.unregistered_at = time.monotonic()
        elif hurry:
            registrar.hurry()
        else:
            registrar.drain()

    async def _run(self, name: str, record: PodSidecar) -> None:
        assert record.registrar is not None
        try:
            await record.registrar.run()
        except Exception as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            log.exception("registrar of pod %s failed", name)
        else:
            record.unregistered_at = time.monotonic()

    async def config_for(self, pod: Pod, container: Container) -> RegistrarConfig:
        env = downward_env(pod, container)
        files = {}
        for path, (secret, key) in mounted_secret_files(pod, container).items():
            files[path] = await self._secret_file(secret, key)
        argv = registrar_argv(list(container.args or []), env, files, f"{self.worker_base}/pods/{pod.metadata.name}")
        return load_config(argv, env)

    async def _secret_file(self, name: str, key: str) -> str:
        """A local copy of one Secret key, as the kubelet's Secret volume would hold it."""
        if (name, key) not in self._secret_files:
            secret = await self.client.get(Secret, name, namespace=self.namespace)
            if key not in (secret.data or {}):
                raise ValueError(f"Secret {name} has no key {key}")
            path = self.secrets_dir / f"{name}.{key}"
            path.write_bytes(base64.b64decode(secret.data[key]))
            path.chmod(0o600)
            self._secret_files[(name, key)] = str(path)
        return self._secret_files[(name, key)]

    async def stop(self) -> None:
        """Drain everything still registered, without waiting for sessions."""
        for record in self.pods.values():
            self._end(record, hurry=True)
        tasks = [r.task for r in self.pods.values() if r.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=30)

    def stats(self) -> dict[str, Any]:
        return {
            "pods": {name: record.times() for name, record in self.pods.items()},
            "running": sum(1 for r in self.pods.values() if r.task is not None and not r.task.done()),
            "pod_ip_health_checks": self.pod_ip_checks,
            "heartbeats": [
                {"orchestrator": url, "result": result, "count": count}
                for (url, result), count in sorted(self.beats.items())
            ],
        }


# -- the stand-in worker and the shard's own endpoints ----------------------------------------------------


def create_app(shard: Shard) -> web.Application:
    def record(request: web.Request) -> PodSidecar | None:
        return shard.pods.get(request.match_info["pod"])

    async def health(request: web.Request) -> web.Response:
        pod = record(request)
        ready = pod is not None and pod.ready
        draining = pod is not None and pod.deleted_at is not None
        return web.json_response({"status": "IDLE" if ready else "LOADING", "active_streams": 0, "draining": draining})

    async def drain(request: web.Request) -> web.Response:
        return web.json_response({"draining": True})

    async def version(request: web.Request) -> web.Response:
        return web.json_response({"version": "bench-stand-in"})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(shard.stats())

    app = web.Application()
    app.router.add_get("/pods/{pod}/health", health)
    app.router.add_post("/pods/{pod}/drain", drain)
    app.router.add_get("/pods/{pod}/version", version)
    app.router.add_get("/_bench/stats", stats)
    return app


def create_pod_ip_app(shard: Shard) -> web.Application:
    """The worker's `/health` on each pod's own address, found by the address the request came in on."""

    async def health(request: web.Request) -> web.Response:
        shard.pod_ip_checks += 1
        local = request.transport.get_extra_info("sockname") if request.transport else None
        pod = shard.by_ip.get(local[0]) if local else None
        ready = pod is not None and pod.ready and pod.deleted_at is None
        return web.json_response({"status": "IDLE" if ready else "LOADING", "active_streams": 0})

    app = web.Application()
    app.router.add_get("/health", health)
    return app


async def serve(args: argparse.Namespace) -> None:
    index, count = (int(part) for part in args.shard.split("/"))
    client = AsyncClient(config=KubeConfig.from_file(args.kubeconfig)) if args.kubeconfig else AsyncClient()
    with tempfile.TemporaryDirectory(prefix="sidecar-secrets-") as secrets_dir:
        shard = Shard(client, args.namespace, index, count, Path(secrets_dir))
        if args.serve_pod_ips:
            shard.pod_ips = web.AppRunner(create_pod_ip_app(shard), handle_signals=False, access_log=None)
            await shard.pod_ips.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        shard.worker_base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        runner = web.AppRunner(create_app(shard), handle_signals=False, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.buffer.read1(4096) else None)
        watch = asyncio.create_task(shard.watch())
        print(f"url={shard.worker_base}", flush=True)
        await asyncio.wait([watch, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        if watch.done():
            log.error("pod watch ended: %r", watch.exception())
        watch.cancel()
        await shard.stop()
        for app_runner in (runner, shard.pod_ips):
            if app_runner is not None:
                await app_runner.cleanup()
        await client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--kubeconfig", help="default: $KUBECONFIG, else in-cluster")
    parser.add_argument("--shard", default="0/1", help="I/N: the pods whose name hashes to I of N")
    parser.add_argument("--serve-pod-ips", action="store_true", help="answer /health on each Ready pod's IP too")
    parser.add_argument("--log-file", help="default: stderr")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(
        filename=args.log_file, level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(args))
    return 0


# -- the benchmark's side ---------------------------------------------------------------------------------


class SidecarProcess:
    """One shard in its own process; it exits when the benchmark does (it watches its stdin)."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str) -> None:
        self.proc = proc
        self.url = url
        self.ps = psutil.Process(proc.pid)

    @classmethod
    def start(
        cls, kubeconfig: Path, namespace: str, shard: int, shards: int, log_file: Path, serve_pod_ips: bool = False
    ) -> SidecarProcess:
        cmd = [
            sys.executable, "-m", "benchmarks.operator.sidecars", "--namespace", namespace,
            "--kubeconfig", str(kubeconfig), "--shard", f"{shard}/{shards}", "--log-file", str(log_file),
        ]  # fmt: skip
        if serve_pod_ips:
            cmd.append("--serve-pod-ips")
        proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = read_first_line(proc, 60)
        if not line.startswith("url="):
            proc.kill()
            proc.wait()
            raise RuntimeError(f"sidecar shard {shard}/{shards} did not start: {line!r}; see {log_file}")
        return cls(proc, line.strip().split("=", 1)[1])

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_bench/stats", timeout=60) as resp:
            return json.loads(resp.read())

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def stop(self) -> None:
        stop_child(self.proc, 60)


if __name__ == "__main__":
    raise SystemExit(main())
