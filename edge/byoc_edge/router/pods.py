"""Where the worker pods are: a static list, a file that is re-read, or the A records of a headless Service.

Each source answers "which pod base URLs exist now"; the router asks again every refresh interval. A headless
Service (``clusterIP: None``) resolves to one A record per ready pod, so DNS needs no Kubernetes client.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit


class PodSourceError(RuntimeError):
    """The source could not be read this time; the router keeps the pods it knew."""


class PodSource(Protocol):
    async def discover(self) -> list[str]: ...

    def describe(self) -> str: ...


def normalize_pod_url(text: str, default_port: int = 8000, scheme: str = "http") -> str:
    """``10.0.0.7`` -> ``http://10.0.0.7:8000``; ``http://pod:9000/`` -> ``http://pod:9000``; IPv6 bracketed."""
    text = text.strip()
    if "://" not in text:
        try:
            if isinstance(ipaddress.ip_address(text), ipaddress.IPv6Address):
                text = f"[{text}]"
        except ValueError:
            pass
        text = f"{scheme}://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not a pod URL: {text!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = parts.port or default_port
    return f"{parts.scheme}://{host}:{port}{parts.path.rstrip('/')}"


def parse_pod_list(text: str, default_port: int = 8000, scheme: str = "http") -> list[str]:
    """URLs separated by commas, spaces or lines; ``#`` starts a comment. Order kept, duplicates dropped."""
    urls: dict[str, None] = {}
    for line in text.splitlines():
        for item in line.split("#", 1)[0].replace(",", " ").split():
            urls[normalize_pod_url(item, default_port, scheme)] = None
    return list(urls)


class StaticPods:
    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = list(urls)

    async def discover(self) -> list[str]:
        return list(self.urls)

    def describe(self) -> str:
        return f"static list ({len(self.urls)} pods)"


class FilePods:
    """A file of pod URLs, read again on every refresh (tests and simple deployments rewrite it)."""

    def __init__(self, path: Path, default_port: int = 8000, scheme: str = "http") -> None:
        self.path = path
        self.default_port = default_port
        self.scheme = scheme

    async def discover(self) -> list[str]:
        try:
            text = self.path.read_text()
        except OSError as exc:
            raise PodSourceError(f"cannot read {self.path}: {exc}") from exc
        try:
            return parse_pod_list(text, self.default_port, self.scheme)
        except ValueError as exc:
            raise PodSourceError(f"{self.path}: {exc}") from exc

    def describe(self) -> str:
        return f"file {self.path}"


Resolver = Callable[..., Awaitable[list[tuple[Any, ...]]]]
# No such name / no address: a headless Service with no ready pod. Anything else is a resolver failure.
_EMPTY_ANSWERS = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


class DnsPods:
    """Every address of ``name`` (``NAME`` or ``NAME:PORT``), as ``scheme://address:port``."""

    def __init__(self, name: str, port: int = 8000, scheme: str = "http", resolver: Resolver | None = None) -> None:
        host, sep, port_text = name.rpartition(":")
        if sep and port_text.isdigit() and "]" not in port_text:
            name, port = host, int(port_text)
        self.name = name
        self.port = port
        self.scheme = scheme
        self._resolver = resolver

    async def discover(self) -> list[str]:
        resolver = self._resolver or asyncio.get_running_loop().getaddrinfo
        try:
            infos = await resolver(self.name, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            if exc.errno in _EMPTY_ANSWERS:
                return []
            raise PodSourceError(f"cannot resolve {self.name}: {exc}") from exc
        addresses = sorted({info[4][0] for info in infos})
        return [normalize_pod_url(a, self.port, self.scheme) for a in addresses]

    def describe(self) -> str:
        return f"DNS {self.name} port {self.port}"


class CombinedPods:
    """The union of several sources (e.g. a static list plus a Service); one failing fails the refresh."""

    def __init__(self, sources: Sequence[PodSource]) -> None:
        self.sources = list(sources)

    async def discover(self) -> list[str]:
        results = await asyncio.gather(*(s.discover() for s in self.sources))
        return list(dict.fromkeys(url for urls in results for url in urls))

    def describe(self) -> str:
        return " + ".join(s.describe() for s in self.sources)
