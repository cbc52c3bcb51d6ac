"""Cluster DNS, emulated with files: a hosts file of Service names, and pod-address files for headless Services.

The hosts file maps ``<svc>.<ns>.svc`` and ``<svc>.<ns>.svc.cluster.local`` to the ClusterIP (headless
Services: to every ready pod IP, one line each, as their A records). Processes that resolve names themselves
read it through ``HostsFileResolver`` (aiohttp) or ``resolve_hosts``; the system resolver is left alone (no
root, no /etc/hosts edits). A process that takes a headless Service's name to find pods by DNS gets a file
of the ready pod addresses instead (``pods_file``), rewritten whenever they change.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path

from aiohttp.abc import AbstractResolver, ResolveResult

CLUSTER_DOMAIN = "cluster.local"


def service_names(name: str, namespace: str) -> list[str]:
    return [f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}"]


def split_service_name(host: str, namespace: str) -> tuple[str, str] | None:
    """``svc``, ``svc.ns``, ``svc.ns.svc`` or ``svc.ns.svc.cluster.local`` (search path of a pod in
    ``namespace``) -> (svc, ns); None for a name outside the cluster domain."""
    parts = host.rstrip(".").lower().split(".")
    if parts[-2:] == CLUSTER_DOMAIN.split("."):
        parts = parts[:-2]
    if len(parts) == 3 and parts[2] == "svc":
        return parts[0], parts[1]
    if len(parts) == 2:
        return parts[0], parts[1]
    if len(parts) == 1:
        return parts[0], namespace
    return None


def _write_if_changed(path: Path, text: str) -> bool:
    """Atomic replace, so a reader never sees half a file; untouched when equal (readers poll mtimes)."""
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return True


class DnsFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.pods_dir = root / "pods-dns"
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self.hosts_file = root / "hosts"
        self._pod_files: dict[Path, tuple[str, str, int | None]] = {}
        self._headless: dict[tuple[str, str], list[str]] = {}
        _write_if_changed(self.hosts_file, "")

    def update(self, cluster_ips: Mapping[tuple[str, str], str], headless: Mapping[tuple[str, str], list[str]]
               ) -> None:
        """cluster_ips: (svc, ns) -> ClusterIP; headless: (svc, ns) -> ready pod IPs."""
        lines = ["# written by byoc_testenv.launcher: Service names of the local cluster"]
        for (name, ns), ip in sorted(cluster_ips.items()):
            lines.append(f"{ip}\t{' '.join(service_names(name, ns))}")
        for (name, ns), ips in sorted(headless.items()):
            lines += [f"{ip}\t{' '.join(service_names(name, ns))}" for ip in ips]
        _write_if_changed(self.hosts_file, "\n".join(lines) + "\n")
        self._headless = {k: list(v) for k, v in headless.items()}
        for path, key in self._pod_files.items():
            self._write_pods(path, *key)

    def pods_file(self, host: str, namespace: str) -> Path | None:
        """The file standing in for ``host`` (``NAME`` or ``NAME:PORT``) resolved from a pod in ``namespace``;
        None for a name outside the cluster."""
        name, sep, port_text = host.rpartition(":")
        port = int(port_text) if sep and port_text.isdigit() else None
        split = split_service_name(name if port else host, namespace)
        if split is None:
            return None
        svc, ns = split
        path = self.pods_dir / (f"{svc}.{ns}.svc" + (f"_{port}" if port else ""))
        self._pod_files[path] = (svc, ns, port)
        self._write_pods(path, svc, ns, port)
        return path

    def _write_pods(self, path: Path, svc: str, ns: str, port: int | None) -> None:
        ips = self._headless.get((svc, ns), [])
        _write_if_changed(path, "".join(f"{ip}:{port}\n" if port else f"{ip}\n" for ip in ips))


def read_hosts(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """A hosts file as name -> addresses (in file order)."""
    out: dict[str, list[str]] = {}
    try:
        text = Path(path).read_text()
    except OSError:
        return out
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        for name in fields[1:]:
            out.setdefault(name.lower(), []).append(fields[0])
    return out


def resolve_hosts(path: str | os.PathLike[str], host: str) -> list[str]:
    return read_hosts(path).get(host.rstrip(".").lower(), [])


def in_cluster_domain(host: str) -> bool:
    host = host.rstrip(".").lower()
    return host.endswith(".svc") or host.endswith(f".svc.{CLUSTER_DOMAIN}")


class HostsFileResolver(AbstractResolver):
    """aiohttp resolver: names in the hosts file first (re-read when it changes), then ``fallback``.

    Cluster names (``*.svc``, ``*.svc.cluster.local``) missing from the file fail at once, as cluster DNS
    answers NXDOMAIN, instead of asking the system resolver.
    """

    def __init__(self, path: str | os.PathLike[str], fallback: AbstractResolver | None = None) -> None:
        self.path = Path(path)
        self._fallback = fallback
        self._stamp: tuple[int, int] | None = None
        self._hosts: dict[str, list[str]] = {}

    def _current(self) -> dict[str, list[str]]:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            return {}
        if stamp != self._stamp:
            self._hosts, self._stamp = read_hosts(self.path), stamp
        return self._hosts

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        ips = self._current().get(host.rstrip(".").lower())
        if ips:
            return [ResolveResult(hostname=host, host=ip, port=port, family=socket.AF_INET, proto=0,
                                  flags=socket.AI_NUMERICHOST) for ip in ips]
        if in_cluster_domain(host):
            raise OSError(socket.EAI_NONAME, f"{host}: no such Service in {self.path}")
        if self._fallback is None:
            from aiohttp.resolver import ThreadedResolver

            self._fallback = ThreadedResolver()
        return await self._fallback.resolve(host, port, family)

    async def close(self) -> None:
        if self._fallback is not None:
            await self._fallback.close()

