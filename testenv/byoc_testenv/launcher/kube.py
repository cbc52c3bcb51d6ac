"""Just enough of a Kubernetes API client for the launcher: list, watch, get and patch over aiohttp.

testenv stays free of the Kubernetes client libraries; a kubeconfig's server, CA and client certificate (or
token) are all it needs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class KubeError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


@dataclass(frozen=True)
class KubeConfig:
    server: str
    ssl: ssl.SSLContext | bool
    headers: dict[str, str]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KubeConfig:
        """The current context of a kubeconfig file (files or inline *-data, client certificate or token)."""
        path = Path(path)
        doc = yaml.safe_load(path.read_text())
        ctx_name = doc.get("current-context")
        ctx = _named(doc.get("contexts"), ctx_name)["context"] if ctx_name else doc["contexts"][0]["context"]
        cluster = _named(doc["clusters"], ctx["cluster"])["cluster"]
        user = _named(doc.get("users"), ctx.get("user"))["user"] if ctx.get("user") else {}
        base = path.parent

        context: ssl.SSLContext | bool = True
        if cluster["server"].startswith("https"):
            if cluster.get("insecure-skip-tls-verify"):
                context = False
            else:
                context = ssl.create_default_context()
                ca = _material(cluster, "certificate-authority", base)
                if ca is not None:
                    context.load_verify_locations(cadata=ca.decode())
            cert, key = _material(user, "client-certificate", base), _material(user, "client-key", base)
            if cert is not None and key is not None:
                if context is False:
                    context = ssl.create_default_context()
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                assert isinstance(context, ssl.SSLContext)
                _load_cert_chain(context, cert, key)
        headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
        return cls(cluster["server"].rstrip("/"), context, headers)


def _named(items: list[Obj] | None, name: str | None) -> Obj:
    for item in items or []:
        if item.get("name") == name:
            return item
    raise ValueError(f"kubeconfig: no entry named {name!r}")


def _material(section: Obj, key: str, base: Path) -> bytes | None:
    if section.get(f"{key}-data"):
        return base64.b64decode(section[f"{key}-data"])
    if section.get(key):
        return (base / section[key]).read_bytes()
    return None


def _load_cert_chain(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    # ssl only loads a chain from files: write them privately for the call and remove them at once.
    with tempfile.TemporaryDirectory(prefix="launcher-tls-") as tmp:
        cert_file, key_file = Path(tmp) / "client.crt", Path(tmp) / "client.key"
        for file, data in ((cert_file, cert), (key_file, key)):
            file.touch(mode=0o600)
            file.write_bytes(data)
        context.load_cert_chain(cert_file, key_file)


class KubeClient:
    def __init__(self, config: KubeConfig) -> None:
        self.config = config
        # Pods with managed fields make long watch lines: aiohttp's default line limit is 64 KiB.
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=config.ssl),
            headers={"Accept": "application/json", **config.headers},
            read_bufsize=1 << 22,
        )

    async def close(self) -> None:
        await self._http.close()

    async def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                      params: dict[str, str] | None = None, seconds: float = 30.0) -> Obj:
        data = None if body is None else json.dumps(body)
        async with self._http.request(method, self.config.server + path, data=data, params=params,
                                      headers={"Content-Type": content_type},
                                      timeout=aiohttp.ClientTimeout(total=seconds)) as resp:
            text = await resp.text()
            if resp.status >= 400:
                raise KubeError(resp.status, _message(text))
            return json.loads(text) if text else {}

    async def get(self, path: str) -> Obj:
        return await self.request("GET", path)

    async def patch_status(self, namespace: str, name: str, status: Obj) -> Obj:
        """Strategic merge patch of a pod's status subresource (conditions merge by type)."""
        return await self.request("PATCH", f"/api/v1/namespaces/{namespace}/pods/{name}/status", {"status": status},
                                  content_type="application/strategic-merge-patch+json")

    async def list(self, path: str) -> tuple[list[Obj], str]:
        data = await self.get(path)
        return data.get("items") or [], data["metadata"]["resourceVersion"]

    async def watch(self, path: str, resource_version: str, timeout_seconds: int = 240) -> AsyncIterator[Obj]:
        """Watch events (``{"type", "object"}``) from resource_version; bookmarks included. Raises Expired."""
        params = {"watch": "1", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(timeout_seconds)}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=timeout_seconds + 30)
        async with self._http.get(self.config.server + path, params=params, timeout=timeout) as resp:
            if resp.status == 410:
                raise Expired()
            if resp.status >= 400:
                raise KubeError(resp.status, _message(await resp.text()))
            async for line in resp.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    if (event.get("object") or {}).get("code") == 410:
                        raise Expired()
                    raise KubeError(int((event.get("object") or {}).get("code") or 500), _message(json.dumps(event)))
                yield event


def _message(text: str) -> str:
    try:
        return str(json.loads(text).get("message") or text)
    except (ValueError, AttributeError):
        return text.strip()[:500]


def key_of(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


class Informer:
    """List then watch one collection, keeping ``items`` (namespace/name -> object) current.

    ``on_change`` runs after the first list and after every event. Lost watches resume from the last
    resourceVersion; an expired one lists again, as client-go's reflector does.
    """

    def __init__(self, client: KubeClient, path: str, on_change: Callable[[], Awaitable[None] | None]) -> None:
        self.client = client
        self.path = path
        self.on_change = on_change
        self.items: dict[str, Obj] = {}
        self.synced = asyncio.Event()

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                items, rv = await self.client.list(self.path)
                self.items = {key_of(o): o for o in items}
                await self._changed()
                self.synced.set()
                backoff = 0.2
                while True:
                    async for event in self.client.watch(self.path, rv):
                        obj = event["object"]
                        rv = obj.get("metadata", {}).get("resourceVersion", rv)
                        if event["type"] == "BOOKMARK":
                            continue
                        if event["type"] == "DELETED":
                            self.items.pop(key_of(obj), None)
                        else:
                            self.items[key_of(obj)] = obj
                        await self._changed()
            except asyncio.CancelledError:
                raise
            except Expired:
                log.info("watch %s expired; listing again", self.path)
            except (aiohttp.ClientError, KubeError, TimeoutError, ValueError, OSError) as exc:
                log.warning("watch %s failed (%s); retrying in %.1fs", self.path, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _changed(self) -> None:
        result = self.on_change()
        if result is not None:
            await result
