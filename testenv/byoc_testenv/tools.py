"""Paths of the cached binaries; each getter builds what is missing first (unless build=False)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import build as _build
from .progress import Progress


def _path(component: _build.Component, name: str, build: bool, progress: Progress | None) -> Path:
    if build:
        _build.ensure(component, progress)
    elif not component.is_built():
        raise FileNotFoundError(f"{name} is not cached yet; run `byoc-testenv build`")
    return component.bin_dir / name


def kubectl_path(*, build: bool = True, progress: Progress | None = None) -> Path:
    return _path(_build.KUBECTL, "kubectl", build, progress)


def helm_path(*, build: bool = True, progress: Progress | None = None) -> Path:
    return _path(_build.KUBECTL, "helm", build, progress)


def kwokctl_path(*, build: bool = True, progress: Progress | None = None) -> Path:
    return _path(_build.KWOK, "kwokctl", build, progress)


@dataclass(frozen=True)
class Binaries:
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    etcd: Path
    kwok: Path
    kwokctl: Path
    kubectl: Path
    helm: Path


def binaries(*, build: bool = True, progress: Progress | None = None) -> Binaries:
    """Every binary the cluster needs, building missing ones (with progress) first."""
    if build:
        _build.ensure_all(progress)
    else:
        missing = [c.key for c in _build.COMPONENTS if not c.is_built()]
        if missing:
            raise FileNotFoundError(f"not cached yet: {', '.join(missing)}; run `byoc-testenv build`")
    kube, kwok, kubectl = _build.KUBE.bin_dir, _build.KWOK.bin_dir, _build.KUBECTL.bin_dir
    return Binaries(
        kube_apiserver=kube / "kube-apiserver",
        kube_controller_manager=kube / "kube-controller-manager",
        kube_scheduler=kube / "kube-scheduler",
        etcd=kube / "etcd",
        kwok=kwok / "kwok",
        kwokctl=kwok / "kwokctl",
        kubectl=kubectl / "kubectl",
        helm=kubectl / "helm",
    )


def is_cached() -> bool:
    return all(c.is_built() for c in _build.COMPONENTS)
