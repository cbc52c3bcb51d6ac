"""Fake node rendering (pure)."""

from __future__ import annotations

import ipaddress
import itertools
import random

import pytest
from byoc_testenv import nodes
from byoc_testenv.nodes import CPUNodeGroup, GPUNodeGroup, Taint, default_node_groups, render_nodes


def by_name(manifests):
    return {m["metadata"]["name"]: m for m in manifests}


def test_gpu_group_renders_capacity_labels_and_taint():
    [node] = render_nodes([GPUNodeGroup("h100", count=1, gpus_per_node=8)])
    assert node["kind"] == "Node" and node["metadata"]["name"] == "h100-0"
    for field in ("capacity", "allocatable"):
        res = node["status"][field]
        assert res["nvidia.com/gpu"] == "8"
        assert {"cpu", "memory", "pods"} <= res.keys()
    labels = node["metadata"]["labels"]
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert labels["nvidia.com/gpu.memory"] == "81559"
    assert labels["nvidia.com/gpu.count"] == "8"
    assert labels["nvidia.com/gpu.present"] == "true"
    assert labels["nvidia.com/gpu.family"] == "hopper"
    assert labels[nodes.GROUP_LABEL] == "h100"
    assert node["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert node["metadata"]["annotations"][nodes.KWOK_NODE_ANNOTATION] == "fake"


def test_several_groups_and_counts():
    manifests = render_nodes(
        [
            GPUNodeGroup("h100", count=2, gpus_per_node=8),
            GPUNodeGroup("a100", count=1, gpus_per_node=0, gpu_product="NVIDIA-A100-SXM4-80GB", mig={"1g.10gb": 7}),
            CPUNodeGroup("cpu", count=3),
        ]
    )
    names = [m["metadata"]["name"] for m in manifests]
    assert names == ["h100-0", "h100-1", "a100-0", "cpu-0", "cpu-1", "cpu-2"]


def test_mig_resources_and_labels():
    group = GPUNodeGroup(
        "a100", gpus_per_node=0, gpu_product="NVIDIA-A100-SXM4-80GB", mig={"1g.10gb": 7, "nvidia.com/mig-2g.20gb": 1}
    )
    [node] = render_nodes([group])
    cap = node["status"]["capacity"]
    assert cap["nvidia.com/mig-1g.10gb"] == "7"
    assert cap["nvidia.com/mig-2g.20gb"] == "1"
    assert cap["nvidia.com/gpu"] == "0"
    labels = node["metadata"]["labels"]
    assert labels["nvidia.com/mig.strategy"] == "mixed"
    assert labels["nvidia.com/mig-1g.10gb.count"] == "7"
    assert labels["nvidia.com/gpu.count"] == "1"  # the one physical GPU cut into slices
    assert node["spec"]["taints"][0]["key"] == "nvidia.com/gpu"


@pytest.mark.parametrize("spec", ["1g.10gb", "mig-1g.10gb", "nvidia.com/mig-1g.10gb"])
def test_mig_profile_spellings(spec):
    assert nodes.mig_resource(spec) == "nvidia.com/mig-1g.10gb"


def test_mig_profile_rejects_nonsense():
    with pytest.raises(ValueError):
        nodes.mig_resource("big")


def test_cpu_group_has_no_gpu_anything():
    [node] = render_nodes([CPUNodeGroup("cpu")])
    assert "taints" not in node["spec"]
    assert not any(k.startswith("nvidia.com") for k in node["status"]["capacity"])
    assert not any(k.startswith("nvidia.com") for k in node["metadata"]["labels"])


def test_taints_and_labels_are_configurable():
    group = GPUNodeGroup(
        "l4",
        gpus_per_node=1,
        gpu_product="NVIDIA-L4",
        taints=[Taint("dedicated", "byoc", "NoExecute")],
        labels={"pool": "edge"},
    )
    [node] = render_nodes([group])
    assert node["spec"]["taints"] == [{"key": "dedicated", "value": "byoc", "effect": "NoExecute"}]
    assert node["metadata"]["labels"]["pool"] == "edge"
    [untainted] = render_nodes([GPUNodeGroup("t4", gpus_per_node=1, gpu_product="Tesla-T4", taints=())])
    assert "taints" not in untainted["spec"]


def test_unknown_product_without_memory_omits_memory_label():
    [node] = render_nodes([GPUNodeGroup("x", gpus_per_node=1, gpu_product="ACME-X1")])
    assert "nvidia.com/gpu.memory" not in node["metadata"]["labels"]
    [node] = render_nodes([GPUNodeGroup("x", gpus_per_node=1, gpu_product="ACME-X1", gpu_memory_mib=1000)])
    assert node["metadata"]["labels"]["nvidia.com/gpu.memory"] == "1000"


def test_start_index_and_duplicates():
    names = [m["metadata"]["name"] for m in render_nodes([CPUNodeGroup("c", count=2)], start={"c": 5})]
    assert names == ["c-5", "c-6"]
    with pytest.raises(ValueError):
        render_nodes([CPUNodeGroup("c"), CPUNodeGroup("c")])


def test_node_addresses_are_loopback_and_stable():
    [node] = render_nodes([CPUNodeGroup("c")])
    ip = node["status"]["addresses"][0]["address"]
    assert ipaddress.ip_address(ip).is_loopback
    assert ip == nodes.node_ip("c-0")


def test_address_ranges_are_loopback_disjoint_and_clear_of_each_other_and_nodes():
    pods = [ipaddress.ip_network(c, strict=False) for c in nodes.pod_cidrs()]
    services = [ipaddress.ip_network(c) for c in nodes.service_cidrs()]
    assert len(pods) == 512 and len(services) == 256
    every = pods + services
    assert all(r.prefixlen == nodes.RANGE_PREFIX and r.is_loopback for r in every)
    assert all(not a.overlaps(b) for a, b in itertools.combinations(every, 2))
    node_ips = ipaddress.ip_network(f"{nodes.NODE_IP_PREFIX}.0.0/16")
    assert not any(r.overlaps(node_ips) for r in every)
    # kwok's cidr names the gateway, the range's first address, which no pod gets.
    assert all(c.split("/")[0].endswith(".1") for c in nodes.pod_cidrs())


@pytest.mark.parametrize("every", [nodes.pod_cidrs(), nodes.service_cidrs()], ids=["pods", "services"])
def test_pick_range_avoids_taken_ranges(every: list[str]):
    assert nodes.pick_range(every, every[1:], random.Random(0)) == every[0]
    picks = {nodes.pick_range(every, [*every[:10], None], random.Random(seed)) for seed in range(50)}
    assert picks.isdisjoint(every[:10]) and len(picks) > 1
    with pytest.raises(ValueError, match="taken"):
        nodes.pick_range(every, every)


def test_default_layout():
    manifests = by_name(render_nodes(default_node_groups()))
    gpu = [m for m in manifests.values() if m["status"]["capacity"].get("nvidia.com/gpu") == "4"]
    assert len(gpu) == 3
    assert all(m["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3" for m in gpu)
    mig = [m for m in manifests.values() if "nvidia.com/mig-1g.10gb" in m["status"]["capacity"]]
    assert len(mig) == 1 and mig[0]["status"]["capacity"]["nvidia.com/mig-1g.10gb"] == "7"
    cpu = [m for m in manifests.values() if not m["metadata"]["labels"].get("nvidia.com/gpu.present")]
    assert len(cpu) == 1
