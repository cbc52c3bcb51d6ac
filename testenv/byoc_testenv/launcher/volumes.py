"""Secret and ConfigMap volumes, as the kubelet mounts them, for processes that have no mount namespace.

The kubelet writes a ``secret`` or ``configMap`` volume's keys (all of them, or the ``items`` it names) as files
into a per-pod directory, bind-mounts that at each container's ``mountPath`` and refreshes the files in place
when the Secret or ConfigMap changes (its atomic writer: the files live in a timestamped directory, ``..data``
links to it, and each visible name links through ``..data``; an update swaps the ``..data`` link). A Secret's
``data`` is base64; a ConfigMap's ``data`` is text, written as UTF-8, and its ``binaryData`` base64, and both
become files. The launcher does the same, with two liberties, since it runs containers as local processes
without root:

- the files are written under ``<launcher root>/volumes/<pod>/<volume>/``, mode 0600 whatever ``defaultMode``
  or ``items[].mode`` say (the kubelet's default is 0644, for the container's user; here every process is the
  launcher's user, on a shared machine);
- a process cannot see them at ``mountPath``, so that path prefix is rewritten to the local directory wherever
  the container spec writes it literally: ``env[].value``, ``command`` and ``args`` (before ``$(VAR)``
  expansion, so expanded references follow). A path that reaches the process some other way (a value from a
  ConfigMap or Secret key, a default compiled into the program) is not rewritten.

Refresh: every ``REFRESH_SECONDS`` (the kubelet takes up to about a minute), rewritten only when the data
changed. A Secret or ConfigMap that cannot be read keeps the pod's containers waiting in ``ContainerCreating``
and posts a ``FailedMount`` Warning event on the pod, as the kubelet does, retrying until it appears
(``optional: true``: an empty volume instead). Once mounted, an object that goes away leaves the last files in
place. A ``subPath`` mount maps to the file in the volume, which (unlike the kubelet's bind mount of it)
follows updates. ``subPathExpr`` mounts and every other volume type (``emptyDir``, ``projected``,
``downwardAPI``, ``persistentVolumeClaim``, ...) are still not emulated: their ``mountPath`` is left as written.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from .kube import KubeClient, KubeError

log = logging.getLogger(__name__)

Obj = dict[str, Any]
REFRESH_SECONDS = 2.0
DATA_LINK = "..data"


class MountFailed(Exception):
    """What the kubelet reports as ``MountVolume.SetUp failed``: the pod's containers cannot start yet."""


@dataclass(frozen=True)
class VolumeKind:
    """A kind of object whose keys a volume projects as files."""

    field: str  # the volume source's field in the pod spec: ``volumes[].secret``
    name_field: str  # the object's name within it
    resource: str  # the API's plural
    noun: str  # as the kubelet's messages name it
    missing_key: str  # the kubelet's message for an item whose key the object lacks
    text_fields: tuple[str, ...]  # the object's fields of keys with text values (UTF-8 on disk)
    base64_fields: tuple[str, ...]  # ... and those with base64-encoded bytes

    def files(self, obj: Obj) -> dict[str, bytes]:
        """The object's keys and their contents, decoded (the API server keeps the keys of its fields apart)."""
        out = {k: str(v).encode() for f in self.text_fields for k, v in (obj.get(f) or {}).items()}
        out.update({k: base64.b64decode(v) for f in self.base64_fields for k, v in (obj.get(f) or {}).items()})
        return out


SECRET = VolumeKind("secret", "secretName", "secrets", "secret",
                    "couldn't find key {key} in Secret {namespace}/{name}", (), ("data",))
CONFIG_MAP = VolumeKind("configMap", "name", "configmaps", "configmap",
                        "configmap references non-existent config key: {key}", ("data",), ("binaryData",))
KINDS = (SECRET, CONFIG_MAP)


@dataclass(frozen=True)
class Volume:
    """A pod's volume that projects a Secret's or ConfigMap's keys."""

    name: str
    kind: VolumeKind
    source: str  # the Secret's or ConfigMap's name
    items: tuple[tuple[str, str], ...] | None  # (key, path); None: every key under its own name
    optional: bool

    @classmethod
    def from_spec(cls, volume: Obj, kind: VolumeKind) -> Volume:
        source = volume[kind.field]
        items = source.get("items")
        return cls(volume["name"], kind, str(source.get(kind.name_field, "")),
                   None if items is None else tuple((i["key"], i["path"]) for i in items),
                   bool(source.get("optional")))


def pod_volumes(pod: Obj) -> dict[str, Volume]:
    """The pod's ``secret`` and ``configMap`` volumes by name (the volumes this module emulates)."""
    return {v["name"]: Volume.from_spec(v, kind) for v in (pod.get("spec") or {}).get("volumes") or []
            for kind in KINDS if kind.field in v}


def container_mounts(pod: Obj, container: Obj, pod_dir: Path) -> list[tuple[str, Path]]:
    """(mountPath, local directory) of the container's Secret and ConfigMap volume mounts, longest mountPath
    first."""
    volumes = pod_volumes(pod)
    out = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"])
        sub = mount.get("subPath") or ""
        if volume is None or mount.get("subPathExpr") or (sub and not _inside(sub)):
            continue  # a bad subPath is the API server's to refuse; here it stays unmapped
        local = pod_dir / volume.name / sub if sub else pod_dir / volume.name
        out.append((mount["mountPath"].rstrip("/") or "/", local))
    return sorted(out, key=lambda m: len(m[0]), reverse=True)


def map_paths(text: str, mounts: list[tuple[str, Path]]) -> str:
    """``text`` with each mountPath, where it stands as a whole path or a path's leading directories, replaced
    by its local directory (``--file=/var/run/x/token`` -> ``--file=<local>/token``; ``/var/run/x-ca`` is not
    ``/var/run/x``)."""
    if not mounts:
        return text
    pattern = re.compile("|".join(rf"(?<![\w./-]){re.escape(m)}(?=/|$|[^\w.-])" for m, _ in mounts))
    local = {m: str(d) for m, d in mounts}
    return pattern.sub(lambda match: local[match.group(0)], text)


def local_container(container: Obj, mounts: list[tuple[str, Path]]) -> Obj:
    """The container spec as this machine runs it: mountPaths rewritten in env values, command and args."""
    if not mounts:
        return container
    out = copy.deepcopy(container)
    for var in out.get("env") or []:
        if "value" in var:
            var["value"] = map_paths(str(var["value"]), mounts)
    for key in ("command", "args"):
        if key in out:
            out[key] = [map_paths(str(a), mounts) for a in out[key]]
    return out


def project(volume: Volume, data: Mapping[str, bytes] | None, namespace: str) -> dict[str, bytes]:
    """The volume's files (relative path -> content) from the object's decoded keys (None: no such object)."""
    if data is None:
        if volume.optional:
            return {}
        raise MountFailed(f'MountVolume.SetUp failed for volume "{volume.name}" : '
                          f'{volume.kind.noun} "{volume.source}" not found')
    if volume.items is None:
        return {_safe(key): value for key, value in data.items()}
    files = {}
    for key, path in volume.items:
        if key not in data:
            if volume.optional:
                continue
            missing = volume.kind.missing_key.format(key=key, namespace=namespace, name=volume.source)
            raise MountFailed(f'MountVolume.SetUp failed for volume "{volume.name}" : {missing}')
        files[_safe(path)] = data[key]
    return files


def _inside(path: str) -> bool:
    """A relative path that stays inside the volume and clear of the writer's ``..`` names (the API server
    validates these too)."""
    parts = Path(path).parts
    return bool(parts) and not Path(path).is_absolute() and ".." not in parts and not parts[0].startswith("..")


def _safe(path: str) -> str:
    if not _inside(path):
        raise MountFailed(f"invalid item path {path!r}")
    return path


def write_atomic(directory: Path, files: Mapping[str, bytes]) -> None:
    """The kubelet's atomic writer: the files in a fresh ``..<stamp>`` directory, ``..data`` swapped to it by a
    rename, each top-level name a link through ``..data``; names no longer there go, as does the old data."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_link = directory / DATA_LINK
    old = os.readlink(data_link) if data_link.is_symlink() else None
    stamp = f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{uuid.uuid4().hex[:8]}"
    target = directory / stamp
    target.mkdir(mode=0o700)
    for rel, content in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(content)
    tmp_link = directory / "..data_tmp"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(stamp)
    os.replace(tmp_link, data_link)
    visible = {Path(rel).parts[0] for rel in files}
    for name in visible:
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(f"{DATA_LINK}/{name}")
    for entry in directory.iterdir():
        if not entry.name.startswith("..") and entry.name not in visible:
            entry.unlink()
    if old is not None and old != stamp:
        shutil.rmtree(directory / old, ignore_errors=True)


class PodVolumes:
    """One pod's Secret and ConfigMap volumes: mounted before its containers start, refreshed while it runs."""

    def __init__(self, client: KubeClient, pod: Obj, directory: Path) -> None:
        self.client = client
        self.pod = pod
        self.directory = directory
        self.namespace: str = pod["metadata"]["namespace"]
        self.volumes = pod_volumes(pod)
        self._written: dict[str, dict[str, bytes]] = {}
        self._mounted = asyncio.Event()
        self._reported: dict[str, str] = {}  # volume -> the failure last posted as an event
        if not self.volumes:
            self._mounted.set()

    def local_container(self, container: Obj) -> Obj:
        return local_container(container, container_mounts(self.pod, container, self.directory))

    async def mounted(self) -> None:
        """Returns once every Secret and ConfigMap volume has its files (at once for a pod without any)."""
        await self._mounted.wait()

    async def run(self, refresh: float = REFRESH_SECONDS) -> None:
        """Mount, then keep the files current until cancelled."""
        while self.volumes:
            await self.sync()
            await asyncio.sleep(refresh)

    async def sync(self) -> None:
        objects: dict[tuple[str, str], dict[str, bytes] | None] = {}  # one read per object per sync
        for volume in self.volumes.values():
            try:
                key = (volume.kind.resource, volume.source)
                if key not in objects:
                    objects[key] = await self._read(volume.kind, volume.source)
                files = project(volume, objects[key], self.namespace)
            except (MountFailed, KubeError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                await self._failed(volume, str(exc))
                continue
            if files != self._written.get(volume.name):
                await asyncio.to_thread(write_atomic, self.directory / volume.name, files)
                if volume.name in self._written:
                    log.info("%s/%s: volume %s updated from %s %s", self.namespace, self.pod["metadata"]["name"],
                             volume.name, volume.kind.noun, volume.source)
                self._written[volume.name] = files
        if len(self._written) == len(self.volumes) and not self._mounted.is_set():
            self._mounted.set()

    async def _read(self, kind: VolumeKind, name: str) -> dict[str, bytes] | None:
        """The object's decoded keys; None when there is no such object."""
        try:
            obj = await self.client.get(f"/api/v1/namespaces/{self.namespace}/{kind.resource}/{name}")
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return kind.files(obj)

    async def _failed(self, volume: Volume, message: str) -> None:
        """Before the mount: an event, once per distinct message. After it: the last files stay, as they do
        with the kubelet, and the launcher's log says why the refresh failed."""
        if volume.name in self._written:
            log.warning("%s/%s: volume %s not refreshed: %s", self.namespace, self.pod["metadata"]["name"],
                        volume.name, message)
            return
        if self._reported.get(volume.name) == message:
            return
        self._reported[volume.name] = message
        log.warning("%s/%s: %s", self.namespace, self.pod["metadata"]["name"], message)
        await self._event("FailedMount", message)

    async def _event(self, reason: str, message: str) -> None:
        meta = self.pod["metadata"]
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        event = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": self.namespace},
            "involvedObject": {"kind": "Pod", "apiVersion": "v1", "namespace": self.namespace,
                               "name": meta["name"], "uid": meta["uid"]},
            "reason": reason, "message": message, "type": "Warning", "count": 1,
            "firstTimestamp": stamp, "lastTimestamp": stamp,
            "source": {"component": "byoc-launcher", "host": (self.pod.get("spec") or {}).get("nodeName", "")},
        }
        try:
            await self.client.request("POST", f"/api/v1/namespaces/{self.namespace}/events", event)
        except (KubeError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("%s/%s: event %s not posted: %s", self.namespace, meta["name"], reason, exc)

    def remove(self) -> None:
        """The pod is gone: so are its volumes (its logs stay)."""
        shutil.rmtree(self.directory, ignore_errors=True)
