"""A container's environment and command line, as a kubelet computes them from the pod."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]


class ConfigError(ValueError):
    """What a kubelet reports as CreateContainerConfigError."""


_LABEL_REF = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_ref(pod: Obj, path: str) -> str:
    """The downward API's fieldRef values."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"),
        "status.hostIP": status.get("hostIP"),
        "status.podIPs": ",".join(ip["ip"] for ip in status.get("podIPs") or []),
        "status.hostIPs": ",".join(ip["ip"] for ip in status.get("hostIPs") or []),
    }
    if path in simple:
        return simple[path] or ""
    match = _LABEL_REF.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise ConfigError(f"unsupported fieldRef {path!r}")


def expand(text: str, env: Mapping[str, str]) -> str:
    """``$(VAR)`` references as the kubelet expands them: ``$$`` escapes, unknown ones stay as written."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("$(", i) and (end := text.find(")", i + 2)) > 0:
            name = text[i + 2:end]
            out.append(env.get(name, text[i:end + 1]))
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def container_env(pod: Obj, container: Obj, lookup: Mapping[tuple[str, str], Mapping[str, str]] | None = None,
                  ) -> dict[str, str]:
    """The container's ``env`` in order (later entries may use earlier ones); ``lookup`` holds the data of
    ConfigMaps and Secrets by (kind, name) for ``configMapKeyRef``/``secretKeyRef`` and ``envFrom``."""
    lookup = lookup or {}
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        kind, ref = ("ConfigMap", source["configMapRef"]) if "configMapRef" in source else ("Secret",
                                                                                          source.get("secretRef"))
        if not ref:
            continue
        data = lookup.get((kind, ref["name"]))
        if data is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f"{kind.lower()} {ref['name']!r} not found")
        env.update({source.get("prefix", "") + k: v for k, v in data.items()})
    for var in container.get("env") or []:
        name = var["name"]
        if "value" in var or "valueFrom" not in var:
            env[name] = expand(str(var.get("value", "")), env)
            continue
        source = var["valueFrom"]
        if "fieldRef" in source:
            env[name] = field_ref(pod, source["fieldRef"]["fieldPath"])
        elif "configMapKeyRef" in source or "secretKeyRef" in source:
            kind, ref = ("ConfigMap", source["configMapKeyRef"]) if "configMapKeyRef" in source else (
                "Secret", source["secretKeyRef"])
            data = lookup.get((kind, ref["name"]))
            if data is None or ref["key"] not in data:
                if ref.get("optional"):
                    continue
                raise ConfigError(f"{kind.lower()} {ref['name']!r} has no key {ref['key']!r}")
            env[name] = data[ref["key"]]
        elif "resourceFieldRef" in source:
            env[name] = resource_field(container, source["resourceFieldRef"])
        else:
            raise ConfigError(f"env {name}: unsupported valueFrom {sorted(source)}")
    return env


def resource_field(container: Obj, ref: Obj) -> str:
    """``limits.*``/``requests.*`` as written in the spec (no node allocatable to fall back to here)."""
    kind, _, resource = ref["resource"].partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(resource)
    return "" if value is None else str(value)


def env_refs(pod: Obj) -> set[tuple[str, str]]:
    """The ConfigMaps and Secrets (kind, name) the pod's containers take environment from."""
    refs: set[tuple[str, str]] = set()
    for container in (pod.get("spec") or {}).get("containers") or []:
        for source in container.get("envFrom") or []:
            if "configMapRef" in source:
                refs.add(("ConfigMap", source["configMapRef"]["name"]))
            elif "secretRef" in source:
                refs.add(("Secret", source["secretRef"]["name"]))
        for var in container.get("env") or []:
            source = var.get("valueFrom") or {}
            if "configMapKeyRef" in source:
                refs.add(("ConfigMap", source["configMapKeyRef"]["name"]))
            elif "secretKeyRef" in source:
                refs.add(("Secret", source["secretKeyRef"]["name"]))
    return refs
