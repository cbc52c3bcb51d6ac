"""The launcher's pure parts: env and command lines, endpoints, DNS files and resolver, probes, stages, images."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from byoc_testenv.launcher import DEFAULT_RUNTIME_IMAGE, HostsFileResolver, LocalImage, launcher_stages
from byoc_testenv.launcher.controller import launchable
from byoc_testenv.launcher.dns import DnsFiles, read_hosts, split_service_name
from byoc_testenv.launcher.env import ConfigError, container_env, env_refs, expand
from byoc_testenv.launcher.images import dump_image_map, load_image_map
from byoc_testenv.launcher.pods import command_line
from byoc_testenv.launcher.probes import Probe
from byoc_testenv.launcher.services import service_view

POD: dict[str, Any] = {
    "metadata": {"name": "w-1", "namespace": "ns", "uid": "u-1", "labels": {"app": "w", "tier": "gpu"}},
    "spec": {
        "nodeName": "gpu-0",
        "containers": [{"name": "worker", "image": "img", "ports": [{"name": "http", "containerPort": 8000}]}],
    },
    "status": {
        "phase": "Running",
        "podIP": "127.64.0.9",
        "hostIP": "127.63.0.1",
        "conditions": [{"type": "Ready", "status": "True"}],
    },
}
RUNTIME = LocalImage(
    entrypoint=("byoc-runtime",),
    commands={"byoc-runtime": "/venv/bin/byoc-runtime", "byoc-router": "/venv/bin/byoc-router"},
    host_env={"byoc-runtime": "BYOC_HOST"},
    dns_flags={"--pods-dns": "--pods-file"},
)


def pod(**changes: Any) -> dict[str, Any]:
    import copy

    out = copy.deepcopy(POD)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = out
        for p in parents:
            node = node[p]
        node[leaf] = value
    return out


def test_the_default_image_is_the_operators() -> None:
    from byoc_operator.config import DEFAULT_RUNTIME_IMAGE as OPERATOR_DEFAULT

    assert DEFAULT_RUNTIME_IMAGE == OPERATOR_DEFAULT


def test_expand_follows_the_kubelet() -> None:
    env = {"A": "x", "B": "y"}
    assert expand("$(A)-$(B)", env) == "x-y"
    assert expand("$(MISSING) $$(A) $$", env) == "$(MISSING) $(A) $"


def test_env_resolves_values_downward_api_and_references() -> None:
    container = {
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "TIER", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['tier']"}}},
            {"name": "URL", "value": "http://$(POD_IP):8000"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
            {"name": "OPTIONAL", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k", "optional": True}}},
        ],
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
    }
    env = container_env(POD, container, {("Secret", "s"): {"token": "t0k"}, ("ConfigMap", "cm"): {"a": "1"}})
    assert env == {
        "CM_a": "1",
        "POD_NAME": "w-1",
        "POD_NAMESPACE": "ns",
        "POD_IP": "127.64.0.9",
        "TIER": "gpu",
        "URL": "http://127.64.0.9:8000",
        "TOKEN": "t0k",
    }
    assert env_refs({"spec": {"containers": [container]}}) == {
        ("Secret", "s"),
        ("ConfigMap", "absent"),
        ("ConfigMap", "cm"),
    }
    with pytest.raises(ConfigError, match="secret 's' has no key"):
        container_env(POD, {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}, {})


def test_command_line_maps_executables_and_turns_pod_dns_into_a_file() -> None:
    files: list[str] = []

    def rewrite(name: str) -> str:
        files.append(name)
        return f"/dns/{name}"

    router = {"command": ["byoc-router"], "args": ["--port=8080", "--pods-dns=w-pods.ns.svc", "--pod-port=8000"]}
    assert command_line(router, RUNTIME, {}, rewrite) == [
        "/venv/bin/byoc-router",
        "--port=8080",
        "--pods-file=/dns/w-pods.ns.svc",
        "--pod-port=8000",
    ]
    spaced = {"command": ["/usr/local/bin/byoc-router"], "args": ["--pods-dns", "w-pods", "--port=$(PORT)"]}
    assert command_line(spaced, RUNTIME, {"PORT": "9"}, rewrite) == [
        "/venv/bin/byoc-router",
        "--pods-file=/dns/w-pods",
        "--port=9",
    ]
    assert command_line({}, RUNTIME, {}, rewrite) == ["/venv/bin/byoc-runtime"]  # the image's entrypoint
    assert files == ["w-pods.ns.svc", "w-pods"]
    with pytest.raises(ConfigError, match="no local executable"):
        command_line({"command": ["sh", "-c", "true"]}, RUNTIME, {}, rewrite)


def test_endpoints_are_ready_pods_with_named_target_ports() -> None:
    service = {
        "metadata": {"name": "w", "namespace": "ns"},
        "spec": {
            "clusterIP": "127.96.0.7",
            "selector": {"app": "w"},
            "ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 9000}],
        },
    }
    not_ready = pod(
        metadata__name="w-2", status__podIP="127.64.0.10", status__conditions=[{"type": "Ready", "status": "False"}]
    )
    deleting = pod(metadata__name="w-3", status__podIP="127.64.0.11", metadata__deletionTimestamp="2026-01-01T00:00Z")
    other_ns = pod(metadata__namespace="other", status__podIP="127.64.0.12")
    view = service_view(service, [POD, not_ready, deleting, other_ns])
    assert view.cluster_ip == "127.96.0.7" and view.ready_ips == ("127.64.0.9",)
    assert [p.endpoints for p in view.ports] == [(("127.64.0.9", 8000),), (("127.64.0.9", 9000),)]
    headless = {**service, "spec": {**service["spec"], "clusterIP": "None", "publishNotReadyAddresses": True}}
    view = service_view(headless, [POD, not_ready])
    assert view.cluster_ip is None and view.ready_ips == ("127.64.0.10", "127.64.0.9")


def test_dns_files_and_names(tmp_path: Path) -> None:
    assert split_service_name("w-pods.ns.svc.cluster.local", "x") == ("w-pods", "ns")
    assert split_service_name("w-pods", "x") == ("w-pods", "x")
    assert split_service_name("example.com.org", "x") is None
    dns = DnsFiles(tmp_path)
    pods = dns.pods_file("w-pods.ns.svc", "ns")
    with_port = dns.pods_file("w-pods:9000", "ns")
    assert pods is not None and with_port is not None and pods.read_text() == ""
    dns.update({("w", "ns"): "127.96.0.7"}, {("w-pods", "ns"): ["127.64.0.9", "127.64.0.10"]})
    hosts = read_hosts(dns.hosts_file)
    assert hosts["w.ns.svc"] == ["127.96.0.7"] and hosts["w.ns.svc.cluster.local"] == ["127.96.0.7"]
    assert hosts["w-pods.ns.svc"] == ["127.64.0.9", "127.64.0.10"]
    assert pods.read_text().split() == ["127.64.0.9", "127.64.0.10"]
    assert with_port.read_text().split() == ["127.64.0.9:9000", "127.64.0.10:9000"]


async def test_hosts_file_resolver(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.96.0.7\tw.ns.svc w.ns.svc.cluster.local\n")
    resolver = HostsFileResolver(hosts)
    try:
        (answer,) = await resolver.resolve("w.ns.svc", 8080)
        assert (answer["host"], answer["port"], answer["family"]) == ("127.96.0.7", 8080, socket.AF_INET)
        with pytest.raises(OSError):
            await resolver.resolve("gone.ns.svc", 80)  # cluster names never reach the system resolver
        hosts.write_text("127.96.0.8\tw.ns.svc\n# a change is picked up\n")
        assert [a["host"] for a in await resolver.resolve("W.ns.svc.", 1)] == ["127.96.0.8"]
        assert (await resolver.resolve("localhost", 1))[0]["host"] in ("127.0.0.1", "::1")
    finally:
        await resolver.close()


def test_probe_period_cap_keeps_the_failure_budget() -> None:
    probe = Probe.from_spec(
        {
            "httpGet": {"path": "/health", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 180,
            "initialDelaySeconds": 30,
        },
        max_period=1.0,
    )
    assert (probe.kind, probe.period, probe.failure_threshold, probe.initial_delay) == ("httpGet", 1.0, 1800, 1.0)
    assert Probe.from_spec({"tcpSocket": {"port": 80}}).period == 10


def test_stage_and_what_is_launched() -> None:
    (stage,) = launcher_stages(["img", "img"])
    assert stage["spec"]["weight"] == 1  # wins over kwok's default pod-ready stage
    assert {"key": ".spec.containers.[].image", "operator": "In", "values": ["img"]} in stage["spec"]["selector"][
        "matchExpressions"
    ]
    assert launcher_stages([]) == []
    images = {"img": RUNTIME}
    assert launchable(POD, images)
    assert not launchable(pod(status__podIP=None), images)
    assert not launchable(pod(metadata__deletionTimestamp="2026-01-01T00:00:00Z"), images)
    assert not launchable(POD, {"other": RUNTIME})
    assert load_image_map(dump_image_map(images)) == images
