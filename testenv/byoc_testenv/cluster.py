"""A real local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok)
started by `kwokctl --runtime binary` from the cached binaries, listening on 127.0.0.1 only.

Each start gets its own kwok home (a fresh temp dir, which is also kwokctl's KWOK_WORKDIR, so
nothing under ~/.kwok or ~/.kube is touched) and a unique cluster name; a registry entry
under <cache>/clusters/ records who owns it, so a cluster left behind by a killed run is
found and removed on the next start.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import random
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from . import build, nodes, stages, tools, versions
from .nodes import NodeGroup
from .polling import wait_for
from .progress import Progress, format_elapsed

Manifest = Mapping[str, Any] | Sequence[Mapping[str, Any]] | str


class ClusterError(RuntimeError):
    pass


# ---------------------------------------------------------------------------
# Registry of clusters started on this machine


def registry_dir() -> Path:
    return build.cache_root() / "clusters"


def _proc_start_time(pid: int) -> str | None:
    """Kernel start time of a process, to tell a live owner from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def owner_alive(entry: Mapping[str, Any]) -> bool:
    pid = entry.get("owner_pid")
    return isinstance(pid, int) and pid > 0 and _proc_start_time(pid) == entry.get("owner_start")


def registered() -> list[dict[str, Any]]:
    """Entries for clusters started on this machine (newest last)."""
    out = []
    for f in sorted(registry_dir().glob("*.json"), key=lambda p: p.stat().st_mtime):
        with contextlib.suppress(OSError, ValueError):
            out.append(json.loads(f.read_text()))
    return out


def _pids_of(home: str) -> list[int]:
    """Processes whose command line mentions this cluster's kwok home (its components)."""
    pids = []
    needle = home.encode()
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (p / "cmdline").read_bytes():
                pids.append(int(p.name))
    return pids


def _kill_all(pids: Iterable[int], grace: float = 5.0, sig: int = signal.SIGTERM) -> None:
    """Signal, wait up to `grace` seconds for them to exit, then SIGKILL what is left."""
    pids = list(pids)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if _proc_start_time(p) is not None and not _is_zombie(p)]
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def remove_cluster(entry: Mapping[str, Any], progress: Progress | None = None) -> None:
    """Stop a registered cluster's processes and delete its files (used by stop, down and stale cleanup)."""
    home = entry["home"]
    if Path(home).exists():
        bins = tools.binaries(build=False) if tools.is_cached() else None
        if bins:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                subprocess.run([str(bins.kwokctl), "--name", entry["name"], "delete", "cluster", "--kubeconfig="],
                               env=_kwok_env(home), capture_output=True, timeout=60)
        _kill_all(_pids_of(home))
        shutil.rmtree(home, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        (registry_dir() / f"{entry['name']}.json").unlink()
    if progress:
        progress.say(f"cluster {entry['name']} removed")


def clean_stale(progress: Progress | None = None) -> list[str]:
    """Remove clusters whose owning process is gone (killed runs); detached ones are kept."""
    removed = []
    for entry in registered():
        if entry.get("detached") or owner_alive(entry):
            continue
        if progress:
            progress.say(f"removing stale cluster {entry['name']} left by pid {entry.get('owner_pid')}")
        remove_cluster(entry)
        removed.append(entry["name"])
    return removed


def _kwok_env(home: str) -> dict[str, str]:
    # kwokctl reads many KWOK_* variables; only ours may steer it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KWOK_")}
    env["KWOK_WORKDIR"] = home
    env.pop("KUBECONFIG", None)
    # kwokctl runs the first `kubectl` on PATH (else downloads one): make it ours.
    env["PATH"] = os.pathsep.join([str(build.KUBECTL.bin_dir), env.get("PATH", "")])
    return env


# ---------------------------------------------------------------------------
# Ports

# Below the kernel's ephemeral range (32768+), so no outgoing connection or bind(0) takes one of
# these while a component is down for a restart; random, so concurrent clusters do not collide
# (kwokctl's own choice walks down from 32767 and races between clusters started together).
PORT_RANGE = (20000, 32000)
PORT_OPTIONS = ("kubeApiserverPort", "etcdPort", "etcdPeerPort", "kwokControllerPort",
                "kubeControllerManagerPort", "kubeSchedulerPort")


def _healthz(port: int) -> bool:
    """A control-plane component's /healthz on 127.0.0.1 (self-signed serving cert; the path is always allowed)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", timeout=5, context=context) as res:
            return bool(res.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _port_free(port: int) -> bool:
    for host in ("127.0.0.1", "0.0.0.0"):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def pick_ports(n: int, rng: random.Random | None = None) -> list[int]:
    rng = rng or random.Random()
    ports: list[int] = []
    for _ in range(2000):
        p = rng.randrange(*PORT_RANGE)
        if p not in ports and _port_free(p):
            ports.append(p)
            if len(ports) == n:
                return ports
    raise ClusterError(f"no {n} free ports in {PORT_RANGE}")


# ---------------------------------------------------------------------------
# kwokctl configuration (pure)


def kwokctl_config(bins: tools.Binaries, cache_dir: str, ports: Mapping[str, int] | None = None,
                   extra_stages: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """kwokctl's config documents: local binaries only (nothing to download), 127.0.0.1 only, our Stages."""
    options: dict[str, Any] = {
        "runtime": "binary",
        "bindAddress": "127.0.0.1",
        "kubeVersion": versions.KUBERNETES,
        "kwokVersion": versions.KWOK,
        "kubeApiserverBinary": str(bins.kube_apiserver),
        "kubeControllerManagerBinary": str(bins.kube_controller_manager),
        "kubeSchedulerBinary": str(bins.kube_scheduler),
        "kwokControllerBinary": str(bins.kwok),
        "etcdBinary": str(bins.etcd),
        "kubectlBinary": str(bins.kubectl),
        "cacheDir": cache_dir,
        "quietPull": True,
        **(ports or {}),
    }
    return [
        {"apiVersion": "config.kwok.x-k8s.io/v1alpha1", "kind": "KwokctlConfiguration", "options": options},
        *stages.default_stages(),
        *(dict(s) for s in extra_stages),
    ]


def manifest_yaml(manifest: Manifest) -> str:
    if isinstance(manifest, str):
        return manifest
    docs = [manifest] if isinstance(manifest, Mapping) else list(manifest)
    return yaml.safe_dump_all([_plain(d) for d in docs], sort_keys=False)


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# ---------------------------------------------------------------------------


_SIGNAL_LOCK = threading.Lock()
_SIGTERM_INSTALLED = False


def _exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so finalizers and atexit stop clusters (only if nobody else handles it)."""
    global _SIGTERM_INSTALLED
    with _SIGNAL_LOCK:
        if _SIGTERM_INSTALLED or threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, lambda signum, frame: (_ for _ in ()).throw(SystemExit(128 + signum)))
        _SIGTERM_INSTALLED = True


class Cluster:
    """A running cluster. Use `Cluster.start(...)` to start one, `Cluster.attach(kubeconfig)` to use one."""

    def __init__(self, *, name: str, kubeconfig: Path, home: Path | None, kubectl_bin: Path,
                 owned: bool, progress: Progress | None = None, pod_cidr: str | None = None,
                 service_cidr: str | None = None) -> None:
        self.name = name
        # kwok's cidr for pod IPs and the ClusterIP range (None: an attached cluster, ranges unknown). Loopback
        # both: the launcher (byoc_testenv.launcher) binds pod IPs and listens on ClusterIPs for kube-proxy.
        self.pod_cidr = pod_cidr
        self.service_cidr = service_cidr
        self.kubeconfig = kubeconfig
        self.home = home
        self.kubectl_bin = kubectl_bin
        self.owned = owned
        self.progress = progress or Progress()
        self._stopped = False

    # --- lifecycle ---------------------------------------------------------

    @classmethod
    def start(cls, node_groups: Iterable[NodeGroup] | None = None, *, name: str | None = None,
              progress: Progress | None = None, timeout: float = 180.0, detached: bool = False,
              extra_stages: Sequence[Mapping[str, Any]] = ()) -> Cluster:
        """Build binaries if needed, start a control plane, add nodes, wait until all is Ready.

        node_groups defaults to nodes.default_node_groups(); pass [] for no nodes. With
        detached=True the cluster outlives this process (stop it with `byoc-testenv down`).
        """
        progress = progress or Progress()
        bins = tools.binaries(progress=progress)
        clean_stale(progress)
        name = name or f"byoc-{os.getpid()}-{secrets.token_hex(3)}"
        registry_dir().mkdir(parents=True, exist_ok=True)
        if (registry_dir() / f"{name}.json").exists():
            raise ClusterError(f"a cluster named {name} is already registered; `byoc-testenv down --name {name}`")
        home = Path(tempfile.mkdtemp(prefix="byoc-testenv-"))
        others = registered()
        kubeconfig = home / "clusters" / name / "kubeconfig.yaml"
        # Addresses no other registered cluster uses (stale ones were just removed, detached ones count).
        pod_cidr = nodes.pick_range(nodes.pod_cidrs(), (e.get("pod_cidr") for e in others))
        service_cidr = nodes.pick_range(nodes.service_cidrs(), (e.get("service_cidr") for e in others))
        entry = {
            "name": name, "home": str(home), "kubeconfig": str(kubeconfig),
            "owner_pid": os.getpid(), "owner_start": _proc_start_time(os.getpid()),
            "detached": detached, "created": time.time(), "pod_cidr": pod_cidr, "service_cidr": service_cidr,
        }
        # Registered before anything runs, so even a start killed halfway gets cleaned up later.
        (registry_dir() / f"{name}.json").write_text(json.dumps(entry, indent=2))
        cluster = cls(name=name, kubeconfig=kubeconfig, home=home, kubectl_bin=bins.kubectl,
                      owned=True, progress=progress, pod_cidr=pod_cidr, service_cidr=service_cidr)
        if not detached:
            atexit.register(cluster.stop)
            _exit_on_sigterm()
        try:
            cluster._create(bins, timeout, extra_stages)
            groups = nodes.default_node_groups() if node_groups is None else list(node_groups)
            if groups:
                cluster.add_nodes(*groups, timeout=timeout)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    @classmethod
    def attach(cls, kubeconfig: str | os.PathLike[str], *, progress: Progress | None = None) -> Cluster:
        """Use a cluster started elsewhere (e.g. `byoc-testenv up`); stop() leaves it running."""
        return cls(name="external", kubeconfig=Path(kubeconfig), home=None, kubectl_bin=tools.kubectl_path(),
                   owned=False, progress=progress)

    def _create(self, bins: tools.Binaries, timeout: float, extra_stages: Sequence[Mapping[str, Any]]) -> None:
        assert self.home is not None
        config = self.home / "kwok.yaml"
        ports = dict(zip(PORT_OPTIONS, pick_ports(len(PORT_OPTIONS)), strict=True))
        config.write_text(manifest_yaml(kwokctl_config(bins, str(self.home / "cache"), ports, extra_stages)))
        log = self.home / "kwokctl.log"
        started = time.monotonic()
        self.progress.say(f"starting cluster {self.name} (etcd, kube-apiserver, kube-controller-manager, "
                          f"kube-scheduler, kwok) in {self.home}")
        cmd = [str(bins.kwokctl), "--name", self.name, "--config", str(config), "create", "cluster",
               "--runtime", "binary", "--kubeconfig=", f"--timeout={int(timeout)}s", "--wait=0s",
               # Pod IPs are fake: take them from loopback so nothing dials off this machine.
               f"--extra-args=kwok-controller=cidr={self.pod_cidr}",
               f"--extra-args=kube-apiserver=service-cluster-ip-range={self.service_cidr}",
               # One instance of each, and no kubelet to restart them: with leader election on, an API server
               # outage past the lease's renew deadline (10 s) makes both exit for good.
               "--extra-args=kube-controller-manager=leader-elect=false",
               "--extra-args=kube-scheduler=leader-elect=false"]
        with open(log, "w") as out, self.progress.heartbeat(f"starting cluster {self.name}"):
            res = subprocess.run(cmd, env=_kwok_env(str(self.home)), stdout=out, stderr=subprocess.STDOUT,
                                 timeout=timeout + 30)
        if res.returncode != 0:
            raise ClusterError(f"kwokctl create cluster failed (exit {res.returncode}):\n{self._logs_tail()}")
        self.wait_ready(timeout=timeout)
        self.progress.say(f"cluster {self.name} ready in {format_elapsed(time.monotonic() - started)}; "
                          f"KUBECONFIG={self.kubeconfig}")

    @property
    def workdir(self) -> Path | None:
        """kwokctl's directory for this cluster (logs/, pids/, pki/, kubeconfig.yaml)."""
        return self.home / "clusters" / self.name if self.home else None

    def _logs_tail(self, lines: int = 12) -> str:
        out = []
        files = [self.home / "kwokctl.log"] if self.home else []
        if self.workdir:
            files += sorted((self.workdir / "logs").glob("*.log"))
        for f in files:
            with contextlib.suppress(OSError):
                text = f.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {f.name} ---\n" + "\n".join(t[:300] for t in text))
        return "\n".join(out)

    def stop(self) -> None:
        """Stop every process of this cluster and delete its files. Safe to call twice."""
        if self._stopped or not self.owned:
            return
        self._stopped = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        remove_cluster({"name": self.name, "home": str(self.home)})
        self.progress.say(f"cluster {self.name} stopped")

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- kubectl -------------------------------------------------------------

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run the cached kubectl against this cluster; raises ClusterError on failure if check."""
        # Discovery cached per cluster: kubectl's default cache is keyed by host:port, which clusters started one
        # after another reuse, and a stale one hides resource types (`auth can-i` then answers "no").
        cache = Path(self.kubeconfig).parent / "kube-cache"
        cmd = [str(self.kubectl_bin), "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(cache), *args]
        res = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed (exit {res.returncode}): {res.stderr.strip()}")
        return res

    def get(self, kind: str, name: str | None = None, *, namespace: str | None = None) -> dict[str, Any]:
        """`kubectl get -o json` as a dict."""
        args = ["get", kind, *([name] if name else []), "-o", "json"]
        if namespace:
            args += ["-n", namespace]
        return json.loads(self.kubectl(*args).stdout)

    def apply(self, manifest: Manifest, *, namespace: str | None = None) -> subprocess.CompletedProcess[str]:
        """`kubectl apply` a dict, a list of dicts, or YAML text."""
        args = ["apply", "-f", "-"] + (["-n", namespace] if namespace else [])
        return self.kubectl(*args, input=manifest_yaml(manifest))

    def delete(self, manifest: Manifest, *, namespace: str | None = None,
               wait: bool = True) -> subprocess.CompletedProcess[str]:
        args = ["delete", "--ignore-not-found", f"--wait={str(wait).lower()}", "-f", "-"]
        return self.kubectl(*args + (["-n", namespace] if namespace else []), input=manifest_yaml(manifest))

    def wait_for(self, what: str | Sequence[str], condition: str, *, namespace: str | None = None,
                 timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """`kubectl wait --for=<condition> <what>...`, e.g. wait_for("pod/x", "condition=Ready")."""
        targets = [what] if isinstance(what, str) else list(what)
        args = ["wait", f"--for={condition}", *targets, f"--timeout={int(timeout)}s"]
        if namespace:
            args += ["-n", namespace]
        return self.kubectl(*args, timeout=timeout + 15)

    def wait_established(self, *crd_names: str, timeout: float = 60.0) -> None:
        """Until each CRD is Established. Polled: `kubectl wait` fails at once while a CRD that was just applied
        has no conditions yet."""

        def established(name: str) -> bool:
            conditions = self.get("crd", name).get("status", {}).get("conditions") or []
            return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

        for name in crd_names:
            wait_for(functools.partial(established, name), timeout, what=f"CRD {name} Established")

    # --- readiness -----------------------------------------------------------

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until the apiserver is ready, the scheduler and controller-manager answer /healthz, and the
        controllers have run far enough to create the default service account."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            res = self.kubectl("get", "--raw", "/readyz", check=False, timeout=10)
            if res.returncode == 0:
                unhealthy = [c for c, port in self._controller_ports().items() if not _healthz(port)]
                if not unhealthy:
                    sa = self.kubectl("get", "serviceaccount", "default", "-n", "default", check=False, timeout=10)
                    if sa.returncode == 0:
                        return
                    last = "waiting for the default service account"
                else:
                    last = f"waiting for {', '.join(unhealthy)} /healthz"
            else:
                last = res.stderr.strip() or res.stdout.strip()
            time.sleep(0.5)
        raise ClusterError(f"cluster {self.name} not ready after {timeout:.0f}s: {last}\n{self._logs_tail()}")

    def _controller_ports(self) -> dict[str, int]:
        """The secure ports kwokctl was given for the controller manager and the scheduler (owned clusters)."""
        if self.home is None:
            return {}
        options = next(yaml.safe_load_all((self.home / "kwok.yaml").read_text()))["options"]
        return {"kube-controller-manager": int(options["kubeControllerManagerPort"]),
                "kube-scheduler": int(options["kubeSchedulerPort"])}

    # --- nodes ---------------------------------------------------------------

    def node_names(self) -> list[str]:
        out = self.kubectl("get", "nodes", "-o", "name").stdout.split()
        return [line.rsplit("/", 1)[-1] for line in out]

    def add_nodes(self, *groups: NodeGroup, timeout: float = 120.0) -> list[str]:
        """Create the groups' nodes (numbering after existing ones of the same group) and wait until Ready."""
        existing = set(self.node_names())
        start: dict[str, int] = {}
        for g in groups:
            taken = [int(n.rsplit("-", 1)[1]) for n in existing
                     if n.startswith(g.name + "-") and n.rsplit("-", 1)[1].isdigit()]
            start[g.name] = max(taken, default=-1) + 1
        manifests = nodes.render_nodes(groups, start)
        if not manifests:
            return []
        self.apply(manifests)
        names = [m["metadata"]["name"] for m in manifests]
        self.wait_nodes_ready(names, timeout=timeout)
        return names

    def wait_nodes_ready(self, names: Sequence[str], timeout: float = 120.0) -> None:
        self.wait_for([f"node/{n}" for n in names], "condition=Ready", timeout=timeout)

    def delete_node(self, name: str, *, timeout: float = 60.0) -> None:
        self.kubectl("delete", "node", name, "--wait=true", f"--timeout={int(timeout)}s", timeout=timeout + 15)

    # --- faults --------------------------------------------------------------

    def _pid_file(self, component: str) -> Path:
        if not self.owned or self.workdir is None:
            raise ClusterError("only a cluster this process started can have its components stopped")
        return self.workdir / "pids" / f"{component}.pid"

    def stop_component(self, component: str = "kube-apiserver") -> None:
        """Kill (SIGKILL, like a crash) one control-plane component: kube-apiserver,
        kube-controller-manager, kube-scheduler, kwok-controller or etcd.
        start_components() brings it back with the same flags and ports."""
        pid_file = self._pid_file(component)
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError) as e:
            raise ClusterError(f"{component} has no pid file: {e}") from e
        _kill_all([pid], grace=10.0, sig=signal.SIGKILL)
        # kwokctl skips components whose pid is alive, and an unreaped zombie still looks alive.
        pid_file.unlink(missing_ok=True)

    def start_components(self, timeout: float = 120.0) -> None:
        """Start every component that is not running (kwokctl start skips running ones), then wait ready."""
        bins = tools.binaries(build=False)
        assert self.home is not None
        res = subprocess.run([str(bins.kwokctl), "--name", self.name, "start", "cluster", f"--timeout={int(timeout)}s"],
                             env=_kwok_env(str(self.home)), capture_output=True, text=True, timeout=timeout + 30)
        if res.returncode != 0:
            raise ClusterError(f"kwokctl start cluster failed: {res.stdout}\n{res.stderr}")
        self.wait_ready(timeout=timeout)

    def restart_apiserver(self, *, down_seconds: float = 0.0, timeout: float = 120.0) -> None:
        """Kill kube-apiserver, keep it down for down_seconds, start it again with the same flags and port."""
        self.stop_component("kube-apiserver")
        if down_seconds:
            time.sleep(down_seconds)
        self.start_components(timeout=timeout)

    # --- misc ----------------------------------------------------------------

    def create_namespace(self, name: str, labels: Mapping[str, str] | None = None,
                         timeout: float = 60.0) -> str:
        """Create a namespace and wait for its default service account (pods need it to be admitted)."""
        self.apply({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": name, "labels": dict(labels or {})}})
        deadline = time.monotonic() + timeout
        while self.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise ClusterError(f"namespace {name}: no default service account after {timeout:.0f}s")
            time.sleep(0.2)
        return name

    def delete_namespace(self, name: str, *, wait: bool = False) -> None:
        self.kubectl("delete", "namespace", name, "--ignore-not-found", f"--wait={str(wait).lower()}",
                     timeout=120)

    def env(self) -> dict[str, str]:
        """Environment for subprocesses that should talk to this cluster."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def __repr__(self) -> str:
        return f"Cluster(name={self.name!r}, kubeconfig={str(self.kubeconfig)!r}, owned={self.owned})"
