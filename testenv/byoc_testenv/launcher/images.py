"""Which container images run here, and as what: the launcher's stand-in for pulling and running an image.

An image maps to a ``LocalImage``: its entrypoint (used when the container names no command), the local
executables its commands resolve to, the environment variable each executable takes its listen address from
(pods have no network namespace here, so each process binds its pod's IP), and flags naming a headless
Service's DNS name that the launcher rewrites to a file it keeps (``--pods-dns`` -> ``--pods-file``).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# The operator's defaults (byoc_operator.handlers.DEFAULT_*_IMAGE; testenv does not import the operator).
DEFAULT_RUNTIME_IMAGE = "ghcr.io/livepeer-byoc/byoc-runtime:0.1.0"
DEFAULT_EDGE_IMAGE = "ghcr.io/livepeer-byoc/byoc-edge:0.1.0"
EDGE_EXECUTABLES = ("byoc-router", "byoc-registrar", "byoc-drain")
RUNTIME_EXECUTABLES = ("byoc-runtime", *EDGE_EXECUTABLES)  # the runtime image installs the edge package too
RUNTIME_HOST_ENV = {
    "byoc-runtime": "BYOC_HOST",
    "byoc-router": "BYOC_ROUTER_HOST",
    "byoc-registrar": "BYOC_REGISTRAR_HOST",
}
RUNTIME_DNS_FLAGS = {"--pods-dns": "--pods-file"}


@dataclass(frozen=True)
class LocalImage:
    entrypoint: tuple[str, ...]
    commands: Mapping[str, str] = field(default_factory=dict)
    host_env: Mapping[str, str] = field(default_factory=dict)
    dns_flags: Mapping[str, str] = field(default_factory=dict)

    def executable(self, command: str) -> str | None:
        """The local path for a container command (by name or by its basename), or None if unknown."""
        return self.commands.get(command) or self.commands.get(Path(command).name)

    def to_json(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else dict(v)) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LocalImage:
        return cls(entrypoint=tuple(data["entrypoint"]), commands=dict(data.get("commands") or {}),
                   host_env=dict(data.get("host_env") or {}), dns_flags=dict(data.get("dns_flags") or {}))


ImageMap = dict[str, LocalImage]


def venv_executable(name: str) -> str:
    """A console script of this Python's environment (the venv's bin/), else from PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"no {name} executable next to {sys.executable} or on PATH")
    return found


def bundled_runtime() -> LocalImage:
    """The runtime image (Dockerfile.runtime: ENTRYPOINT byoc-runtime; the edge commands are in it too)."""
    return LocalImage(
        entrypoint=("byoc-runtime",),
        commands={name: venv_executable(name) for name in RUNTIME_EXECUTABLES},
        host_env=dict(RUNTIME_HOST_ENV),
        dns_flags=dict(RUNTIME_DNS_FLAGS),
    )


def bundled_edge() -> LocalImage:
    """The edge image (Dockerfile.edge: ENTRYPOINT byoc-router; routers and registrar/drain sidecars)."""
    return LocalImage(
        entrypoint=("byoc-router",),
        commands={name: venv_executable(name) for name in EDGE_EXECUTABLES},
        host_env={k: v for k, v in RUNTIME_HOST_ENV.items() if k in EDGE_EXECUTABLES},
        dns_flags=dict(RUNTIME_DNS_FLAGS),
    )


def runtime_images(*images: str) -> ImageMap:
    """Map each image (default: the operator's default runtime image) to this venv's runtime executables, and the
    operator's default edge image to its edge executables (routers and sidecars run it)."""
    local = bundled_runtime()
    return {DEFAULT_EDGE_IMAGE: bundled_edge(), **{image: local for image in images or (DEFAULT_RUNTIME_IMAGE,)}}


def dump_image_map(images: Mapping[str, LocalImage]) -> str:
    return json.dumps({image: local.to_json() for image, local in images.items()}, indent=2)


def load_image_map(text: str) -> ImageMap:
    return {image: LocalImage.from_json(data) for image, data in json.loads(text).items()}
