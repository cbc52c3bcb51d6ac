"""A real local Kubernetes (kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kwok)
with fake GPU nodes, for tests and demos. Binaries are built from Go modules once and cached."""

from . import build, nodes, stages, tools, versions
from .cluster import Cluster, ClusterError
from .nodes import CPUNodeGroup, GPUNodeGroup, NodeGroup, Taint, default_node_groups, render_nodes
from .progress import Progress

__all__ = [
    "CPUNodeGroup",
    "Cluster",
    "ClusterError",
    "GPUNodeGroup",
    "NodeGroup",
    "Progress",
    "Taint",
    "build",
    "default_node_groups",
    "nodes",
    "render_nodes",
    "stages",
    "tools",
    "versions",
]
