"""Fake nodes for kwok: pure functions from node groups to Node manifests.

GPU nodes look like nodes of a real cluster running the NVIDIA device plugin and
GPU feature discovery: `nvidia.com/gpu` (and MIG `nvidia.com/mig-<profile>`)
capacity, the `nvidia.com/gpu.*` labels, and the usual GPU taint, so the real
kube-scheduler places GPU pods by the same rules as in production.
"""

from __future__ import annotations

import ipaddress
import random
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from . import versions

# Annotation kwokctl's kwok controller selects the nodes it manages by.
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
GROUP_LABEL = "byoc-testenv/node-group"
GPU_RESOURCE = "nvidia.com/gpu"
# Fake addresses live in loopback ranges, so anything that dials one stays on this machine.
NODE_IP_PREFIX = "127.63"
# Pod IPs and Service ClusterIPs: each cluster on this machine takes its own /20 of each block. kwok and the API
# server hand out the same addresses in the same order in every cluster, and the launcher binds them, so two
# clusters sharing a range would answer each other's probes and requests (a pod killed in one gets its address
# taken by a pod of the other).
POD_BLOCK = "127.64.0.0/11"
SERVICE_BLOCK = "127.96.0.0/12"
RANGE_PREFIX = 20


@dataclass(frozen=True)
class Taint:
    key: str
    value: str = ""
    effect: str = "NoSchedule"

    def manifest(self) -> dict[str, str]:
        out = {"key": self.key, "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out


GPU_TAINT = Taint("nvidia.com/gpu", "present", "NoSchedule")


@dataclass(frozen=True)
class GPUProduct:
    """What GPU feature discovery reports for a product."""

    memory_mib: int
    family: str
    compute: tuple[int, int]


# A few products, so tests can name one and get plausible labels.
GPU_PRODUCTS: Mapping[str, GPUProduct] = {
    "NVIDIA-H100-80GB-HBM3": GPUProduct(81559, "hopper", (9, 0)),
    "NVIDIA-H200": GPUProduct(143771, "hopper", (9, 0)),
    "NVIDIA-A100-SXM4-80GB": GPUProduct(81920, "ampere", (8, 0)),
    "NVIDIA-A100-SXM4-40GB": GPUProduct(40960, "ampere", (8, 0)),
    "NVIDIA-L4": GPUProduct(23034, "ada-lovelace", (8, 9)),
    "NVIDIA-L40S": GPUProduct(46068, "ada-lovelace", (8, 9)),
    "NVIDIA-A10G": GPUProduct(23028, "ampere", (8, 6)),
    "Tesla-T4": GPUProduct(15360, "turing", (7, 5)),
    "NVIDIA-GeForce-RTX-4090": GPUProduct(24564, "ada-lovelace", (8, 9)),
}


@dataclass(frozen=True)
class NodeGroup:
    """`count` identical nodes named `<name>-<index>`. With gpus_per_node=0 and no MIG it is a CPU node."""

    name: str = "cpu"
    count: int = 1
    _: KW_ONLY
    cpu: str = "32"
    memory: str = "256Gi"
    pods: int = 110
    ephemeral_storage: str = "500Gi"
    gpus_per_node: int = 0
    gpu_product: str = "NVIDIA-H100-80GB-HBM3"
    gpu_memory_mib: int | None = None  # default: looked up from GPU_PRODUCTS
    # MIG resources per node, e.g. {"1g.10gb": 7} -> nvidia.com/mig-1g.10gb: 7 (mixed strategy).
    mig: Mapping[str, int] = field(default_factory=dict)
    # Physical GPUs partitioned into the MIG devices above (counted in nvidia.com/gpu.count).
    mig_gpus: int = 1
    taints: Sequence[Taint] | None = None  # default: the GPU taint on GPU nodes, none on CPU nodes
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def has_gpus(self) -> bool:
        return self.gpus_per_node > 0 or bool(self.mig)

    def node_names(self, start: int = 0) -> list[str]:
        return [f"{self.name}-{i}" for i in range(start, start + self.count)]


@dataclass(frozen=True)
class GPUNodeGroup(NodeGroup):
    """GPU nodes (tainted `nvidia.com/gpu=present:NoSchedule` unless taints= says otherwise)."""

    name: str = "gpu"
    gpus_per_node: int = field(default=8, kw_only=True)


@dataclass(frozen=True)
class CPUNodeGroup(NodeGroup):
    """Plain nodes: no GPU resources, no taints."""

    name: str = "cpu"


def default_node_groups() -> list[NodeGroup]:
    """The layout tests get by default: 3 H100 nodes with 4 GPUs, 1 A100 node cut into 7 MIG slices, 1 CPU node."""
    return [
        GPUNodeGroup("gpu-h100", count=3, gpus_per_node=4, gpu_product="NVIDIA-H100-80GB-HBM3"),
        GPUNodeGroup("gpu-a100-mig", count=1, gpus_per_node=0, gpu_product="NVIDIA-A100-SXM4-80GB",
                     mig={"1g.10gb": 7}),
        CPUNodeGroup("cpu", count=1),
    ]


_MIG_PROFILE = re.compile(r"(?:nvidia\.com/)?(?:mig-)?(?P<g>\d+)g\.(?P<gb>\d+)gb(?P<rest>[.+a-z0-9]*)")


def mig_resource(profile: str) -> str:
    """'1g.10gb', 'mig-1g.10gb' or 'nvidia.com/mig-1g.10gb' -> 'nvidia.com/mig-1g.10gb'."""
    m = _MIG_PROFILE.fullmatch(profile)
    if not m:
        raise ValueError(f"not a MIG profile: {profile!r} (expected like '1g.10gb')")
    return f"nvidia.com/mig-{m.group('g')}g.{m.group('gb')}gb{m.group('rest')}"


def _mig_labels(resource: str, count: int) -> dict[str, str]:
    m = _MIG_PROFILE.fullmatch(resource)
    assert m
    prefix = resource  # e.g. nvidia.com/mig-1g.10gb
    return {
        f"{prefix}.count": str(count),
        f"{prefix}.memory": str(int(m.group("gb")) * 1024),
        f"{prefix}.slices.gi": m.group("g"),
        f"{prefix}.slices.ci": m.group("g"),
    }


def gpu_labels(group: NodeGroup) -> dict[str, str]:
    """The labels GPU feature discovery would put on a node of this group."""
    if not group.has_gpus:
        return {}
    product = GPU_PRODUCTS.get(group.gpu_product)
    memory = group.gpu_memory_mib if group.gpu_memory_mib is not None else (product.memory_mib if product else None)
    physical = group.gpus_per_node + (group.mig_gpus if group.mig else 0)
    labels = {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": group.gpu_product,
        "nvidia.com/gpu.count": str(physical),
        "nvidia.com/gpu.replicas": "1",
        "nvidia.com/gpu.sharing-strategy": "none",
        "nvidia.com/gpu.machine": "byoc-testenv",
        "nvidia.com/mig.capable": "true" if group.mig else "false",
    }
    if memory is not None:
        labels["nvidia.com/gpu.memory"] = str(memory)
    if product:
        labels["nvidia.com/gpu.family"] = product.family
        labels["nvidia.com/gpu.compute.major"] = str(product.compute[0])
        labels["nvidia.com/gpu.compute.minor"] = str(product.compute[1])
    if group.mig:
        labels["nvidia.com/mig.strategy"] = "mixed"
        for profile, count in sorted(group.mig.items()):
            labels.update(_mig_labels(mig_resource(profile), count))
    return labels


def node_resources(group: NodeGroup) -> dict[str, str]:
    res = {"cpu": group.cpu, "memory": group.memory, "pods": str(group.pods),
           "ephemeral-storage": group.ephemeral_storage}
    if group.has_gpus:
        res[GPU_RESOURCE] = str(group.gpus_per_node)
    for profile, count in sorted(group.mig.items()):
        res[mig_resource(profile)] = str(count)
    return res


def node_ip(name: str) -> str:
    """A stable fake InternalIP for a node name, in 127.63.0.0/16."""
    h = zlib.crc32(name.encode())
    return f"{NODE_IP_PREFIX}.{h % 254 + 1}.{(h >> 8) % 254 + 1}"


def render_node(group: NodeGroup, name: str) -> dict[str, Any]:
    """One kwok-managed Node manifest, status included (kwok keeps the given capacity)."""
    taints = group.taints if group.taints is not None else ((GPU_TAINT,) if group.has_gpus else ())
    labels = {
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": name,
        "node-role.kubernetes.io/agent": "",
        "type": "kwok",
        GROUP_LABEL: group.name,
        **gpu_labels(group),
        **group.labels,
    }
    resources = node_resources(group)
    node: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0",
                            **group.annotations},
        },
        "spec": {},
        "status": {
            "addresses": [{"type": "InternalIP", "address": node_ip(name)}, {"type": "Hostname", "address": name}],
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": versions.KUBERNETES,
                "kubeProxyVersion": versions.KUBERNETES,
                "containerRuntimeVersion": f"kwok://{versions.KWOK}",
                "kernelVersion": "byoc-testenv",
                "osImage": "byoc-testenv (kwok)",
            },
        },
    }
    if taints:
        node["spec"]["taints"] = [t.manifest() for t in taints]
    return node


def render_nodes(groups: Iterable[NodeGroup], start: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
    """All nodes of all groups; `start` gives the first index per group name (to add more later)."""
    start = start or {}
    nodes: list[dict[str, Any]] = []
    seen: set[str] = set()
    for group in groups:
        if group.count < 0:
            raise ValueError(f"node group {group.name}: count must be >= 0")
        for name in group.node_names(start.get(group.name, 0)):
            if name in seen:
                raise ValueError(f"duplicate node name {name}: give node groups distinct names")
            seen.add(name)
            nodes.append(render_node(group, name))
    return nodes


def pod_cidrs() -> list[str]:
    """Every pod range a cluster can take, as kwok's ``cidr`` (its first address is the gateway, never a pod's)."""
    subnets = ipaddress.ip_network(POD_BLOCK).subnets(new_prefix=RANGE_PREFIX)
    return [f"{net.network_address + 1}/{net.prefixlen}" for net in subnets]


def service_cidrs() -> list[str]:
    """Every Service range a cluster can take, as the API server's ``service-cluster-ip-range``."""
    return [str(net) for net in ipaddress.ip_network(SERVICE_BLOCK).subnets(new_prefix=RANGE_PREFIX)]


def pick_range(every: list[str], taken: Iterable[str | None], rng: random.Random | None = None) -> str:
    """A range of `every` no other cluster holds; random, so clusters started at the same moment rarely pick
    alike."""
    free = sorted(set(every) - set(taken))
    if not free:
        raise ValueError(f"every range from {every[0]} to {every[-1]} is taken by a running cluster")
    return (rng or random).choice(free)
