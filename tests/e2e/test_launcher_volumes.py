"""The launcher's Secret and ConfigMap volumes: which mounts map where and what files a volume projects (pure),
the kubelet-style atomic writer on a real directory, and, on the real control plane, a pod that waits in
ContainerCreating with a FailedMount event until its Secret (or ConfigMap) exists, then reads the file through
the mapped path and sees it change when the Secret (or ConfigMap) does."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from byoc_testenv import Cluster
from byoc_testenv.launcher import Launcher
from byoc_testenv.launcher.volumes import (
    CONFIG_MAP,
    SECRET,
    MountFailed,
    Volume,
    container_mounts,
    local_container,
    map_paths,
    pod_volumes,
    project,
    write_atomic,
)
from byoc_testenv.polling import wait_for

from .conftest import PY_IMAGE

POD: dict[str, Any] = {
    "metadata": {"name": "w", "namespace": "ns", "uid": "u"},
    "spec": {
        "volumes": [
            {"name": "tok", "secret": {"secretName": "t", "items": [{"key": "k", "path": "token"}]}},
            {"name": "orch", "secret": {"secretName": "o"}},
            {"name": "conf", "configMap": {"name": "c", "defaultMode": 0o644}},
            {"name": "cache", "persistentVolumeClaim": {"claimName": "c"}},
        ],
        "containers": [],
    },
}
POD_DIR = Path("/launcher/volumes/ns_w_u")


def test_mounts_of_secret_and_config_map_volumes_only_longest_first_subpath_to_the_file() -> None:
    container = {
        "volumeMounts": [
            {"name": "orch", "mountPath": "/s"},
            {"name": "tok", "mountPath": "/var/run/byoc/token/"},
            {"name": "conf", "mountPath": "/etc/byoc"},
            {"name": "cache", "mountPath": "/models"},  # not a Secret or ConfigMap: not emulated, left as written
            {"name": "orch", "mountPath": "/etc/one", "subPath": "secret"},
            {"name": "orch", "mountPath": "/etc/bad", "subPath": "../../x"},  # the API server refuses these
            {"name": "orch", "mountPath": "/etc/expr", "subPathExpr": "$(POD_NAME)"},
        ]
    }
    assert container_mounts(POD, container, POD_DIR) == [
        ("/var/run/byoc/token", POD_DIR / "tok"),
        ("/etc/byoc", POD_DIR / "conf"),
        ("/etc/one", POD_DIR / "orch" / "secret"),
        ("/s", POD_DIR / "orch"),
    ]
    assert container_mounts(POD, {"name": "plain"}, POD_DIR) == []


def test_map_paths_replaces_whole_path_prefixes_only() -> None:
    mounts = [("/var/run/x/0-ca", Path("/l/ca")), ("/var/run/x/0", Path("/l/zero")), ("/s", Path("/l/s"))]
    assert map_paths("/var/run/x/0/secret", mounts) == "/l/zero/secret"
    assert map_paths("--secret-file=/var/run/x/0/secret", mounts) == "--secret-file=/l/zero/secret"
    assert map_paths("--ca-file=/var/run/x/0-ca/ca.crt", mounts) == "--ca-file=/l/ca/ca.crt"
    assert map_paths("/var/run/x/0", mounts) == "/l/zero"
    assert map_paths("a:/s,/s/b /s", mounts) == "a:/l/s,/l/s/b /l/s"
    # Not the mount: a longer name, a path that only contains it, a relative path.
    for text in ("/var/run/x/00/secret", "/var/run/x/0.d", "/srv", "/opt/s", "s/x", "./s", "$(FILE)"):
        assert map_paths(text, mounts) == text
    assert map_paths("/s/a", []) == "/s/a"


def test_local_container_rewrites_env_values_command_and_args_only() -> None:
    mounts = [("/var/run/byoc/token", Path("/l/tok"))]
    container = {
        "name": "worker",
        "command": ["byoc-runtime", "--token-file=/var/run/byoc/token/token"],
        "args": ["/var/run/byoc/token"],
        "env": [
            {"name": "BYOC_TOKEN_FILE", "value": "/var/run/byoc/token/token"},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        ],
        "volumeMounts": [{"name": "tok", "mountPath": "/var/run/byoc/token"}],
    }
    local = local_container(container, mounts)
    assert local["command"] == ["byoc-runtime", "--token-file=/l/tok/token"]
    assert local["args"] == ["/l/tok"]
    assert local["env"] == [
        {"name": "BYOC_TOKEN_FILE", "value": "/l/tok/token"},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]
    assert local["volumeMounts"] == container["volumeMounts"]
    assert container["env"][0]["value"] == "/var/run/byoc/token/token"  # the pod's own spec is untouched


def test_volumes_of_a_pod_by_kind() -> None:
    volumes = pod_volumes(POD)
    assert volumes == {
        "tok": Volume("tok", SECRET, "t", (("k", "token"),), False),
        "orch": Volume("orch", SECRET, "o", None, False),
        "conf": Volume("conf", CONFIG_MAP, "c", None, False),
    }


def test_project_items_all_keys_optional_and_missing() -> None:
    data = {"k": b"v1", "other": b"x"}
    with_items = Volume("tok", SECRET, "t", (("k", "token"),), False)
    assert project(with_items, data, "ns") == {"token": b"v1"}
    assert project(Volume("all", SECRET, "t", None, False), data, "ns") == data
    with pytest.raises(MountFailed, match='volume "tok" : secret "t" not found'):
        project(with_items, None, "ns")
    with pytest.raises(MountFailed, match="couldn't find key k in Secret ns/t"):
        project(with_items, {"other": b"x"}, "ns")
    optional = Volume("tok", SECRET, "t", (("k", "token"),), True)
    assert project(optional, None, "ns") == {}
    assert project(optional, {"other": b"x"}, "ns") == {}
    with pytest.raises(MountFailed, match="invalid item path"):
        project(Volume("tok", SECRET, "t", (("k", "../escape"),), False), data, "ns")


def test_config_map_files_from_text_and_binary_data_and_its_kubelet_messages() -> None:
    config_map = {"data": {"app.conf": "name=é\n"}, "binaryData": {"blob": base64.b64encode(b"\x00\xff").decode()}}
    data = CONFIG_MAP.files(config_map)
    assert data == {"app.conf": "name=é\n".encode(), "blob": b"\x00\xff"}
    assert CONFIG_MAP.files({"metadata": {"name": "empty"}}) == {}
    assert SECRET.files({"data": {"k": base64.b64encode(b"v").decode()}}) == {"k": b"v"}
    everything = Volume("conf", CONFIG_MAP, "c", None, False)
    assert project(everything, data, "ns") == data
    picked = Volume("conf", CONFIG_MAP, "c", (("blob", "bin/blob"),), False)
    assert project(picked, data, "ns") == {"bin/blob": b"\x00\xff"}
    with pytest.raises(MountFailed, match='volume "conf" : configmap "c" not found'):
        project(everything, None, "ns")
    with pytest.raises(MountFailed, match="configmap references non-existent config key: nope"):
        project(Volume("conf", CONFIG_MAP, "c", (("nope", "x"),), False), data, "ns")
    assert project(Volume("conf", CONFIG_MAP, "c", None, True), None, "ns") == {}


def test_write_atomic_swaps_data_and_the_path_sees_a_new_file(tmp_path: Path) -> None:
    volume = tmp_path / "tok"
    write_atomic(volume, {"token": b"one", "sub/deep": b"d"})
    token = volume / "token"
    assert token.read_bytes() == b"one" and (volume / "sub" / "deep").read_bytes() == b"d"
    assert os.readlink(token) == "..data/token"
    assert stat.S_IMODE(os.stat(token).st_mode) == 0o600
    first = os.stat(token).st_ino
    data_dir = os.readlink(volume / "..data")

    write_atomic(volume, {"token": b"two"})
    assert token.read_bytes() == b"two"
    assert os.stat(token).st_ino != first  # what byoc_edge.bearer notices
    assert not (volume / "sub").exists()  # gone from the Secret, gone from the volume
    assert not (volume / data_dir).exists()  # the old data directory is removed
    assert sorted(p.name for p in volume.iterdir()) == sorted(["..data", os.readlink(volume / "..data"), "token"])


# -- on the real control plane ------------------------------------------------------------------------------

# Prints the token file it was given, whenever its content changes, and serves HTTP for its readiness probe.
READER = """
import http.server, os, sys, threading, time
path = os.environ["TOKEN_FILE"]
print("PATH " + path + " ARG " + sys.argv[1], flush=True)
def watch():
    last = None
    while True:
        value = open(path).read()
        if value != last:
            print("TOKEN " + value, flush=True)
            last = value
        time.sleep(0.2)
threading.Thread(target=watch, daemon=True).start()
http.server.HTTPServer((os.environ["POD_IP"], 8000), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def secret(value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "tok"},
        "data": {"token": base64.b64encode(value.encode()).decode()},
    }


def config_map(value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "conf"},
        "data": {"value": value},
        "binaryData": {"blob": base64.b64encode(b"\x00" + value.encode()).decode()},
    }


def reader_pod(volume: dict[str, Any]) -> dict[str, Any]:
    """A pod whose container prints the file ``value`` of the volume (named ``t``) mounted at /var/run/t."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "reader"},
        "spec": {
            "volumes": [{"name": "t", **volume}],
            "containers": [
                {
                    "name": "main",
                    "image": PY_IMAGE,
                    "args": ["-c", READER, "/var/run/t/value"],
                    "env": [
                        {"name": "TOKEN_FILE", "value": "/var/run/t/value"},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    ],
                    "volumeMounts": [{"name": "t", "mountPath": "/var/run/t", "readOnly": True}],
                    "readinessProbe": {"httpGet": {"path": "/", "port": 8000}, "periodSeconds": 1},
                }
            ],
        },
    }


def failed_mounts(cluster: Cluster, ns: str) -> list[dict[str, Any]]:
    return [e for e in cluster.get("events", namespace=ns)["items"] if e.get("reason") == "FailedMount"]


def wait_for_failed_mount(cluster: Cluster, ns: str, launcher: Launcher, message: str) -> None:
    """The kubelet's FailedMount event, and the container waits in ContainerCreating with no process."""
    (event,) = wait_for(lambda: failed_mounts(cluster, ns), 60, "a FailedMount event")
    assert event["involvedObject"]["name"] == "reader" and event["type"] == "Warning"
    assert event["message"] == message
    waiting = {"waiting": {"reason": "ContainerCreating"}}  # kwok may report it running first; the launcher corrects

    def states() -> list[Any]:
        return [c["state"] for c in cluster.get("pod", "reader", namespace=ns)["status"]["containerStatuses"]]

    wait_for(lambda: states() == [waiting], 60, "the container to wait in ContainerCreating")
    assert launcher.state()["pods"][f"{ns}/reader"]["containers"]["main"]["pid"] is None


def local_path(launcher: Launcher, ns: str) -> str:
    """The file's path as the process was given it, in env and args alike: mapped into the launcher's volumes."""
    logs = launcher.logs(f"{ns}/reader")
    local = next(line for line in logs.splitlines() if line.startswith("PATH ")).split()
    assert local[1] == local[3] and local[1].startswith(str(launcher.root / "volumes"))  # env and args both mapped
    assert local[1].endswith("/t/value")
    assert stat.S_IMODE(os.stat(local[1]).st_mode) == 0o600
    return local[1]


def delete_reader(cluster: Cluster, ns: str, launcher: Launcher, path: str) -> None:
    cluster.kubectl("delete", "-n", ns, "pod/reader", "--wait=false")
    wait_for(lambda: f"{ns}/reader" not in launcher.state()["pods"], 60, "the process stopped")
    assert not Path(path).exists()  # the pod's volumes go with it


@pytest.mark.cluster
def test_pod_waits_for_its_secret_then_reads_the_mounted_file_and_follows_rotation(
    e2e_cluster: Cluster, e2e_namespace: str, launcher: Launcher
) -> None:
    ns, cluster = e2e_namespace, e2e_cluster

    def apply(*manifests: dict[str, Any]) -> None:
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(manifests))

    apply(reader_pod({"secret": {"secretName": "tok", "items": [{"key": "token", "path": "value"}]}}))
    wait_for_failed_mount(cluster, ns, launcher, 'MountVolume.SetUp failed for volume "t" : secret "tok" not found')

    apply(secret("first-value"))
    wait_for(lambda: "TOKEN first-value" in launcher.logs(f"{ns}/reader"), 60, "the process to read the file")
    path = local_path(launcher, ns)

    apply(secret("second-value"))
    wait_for(lambda: "TOKEN second-value" in launcher.logs(f"{ns}/reader"), 60, "the rotated value in the file")
    assert len(failed_mounts(cluster, ns)) == 1  # one event for one failure, none after the mount
    delete_reader(cluster, ns, launcher, path)


@pytest.mark.cluster
def test_pod_waits_for_its_config_map_then_reads_text_and_binary_files_and_follows_updates(
    e2e_cluster: Cluster, e2e_namespace: str, launcher: Launcher
) -> None:
    ns, cluster = e2e_namespace, e2e_cluster

    def apply(*manifests: dict[str, Any]) -> None:
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(manifests))

    # Every key of the ConfigMap, data and binaryData alike; defaultMode is the kubelet's, not the launcher's.
    apply(reader_pod({"configMap": {"name": "conf", "defaultMode": 0o644}}))
    wait_for_failed_mount(cluster, ns, launcher, 'MountVolume.SetUp failed for volume "t" : configmap "conf" not found')

    apply(config_map("first-välue"))
    wait_for(lambda: "TOKEN first-välue" in launcher.logs(f"{ns}/reader"), 60, "the process to read the file")
    path = local_path(launcher, ns)
    assert Path(path).read_bytes() == "first-välue".encode()  # text data, as UTF-8
    blob = Path(path).parent / "blob"
    assert blob.read_bytes() == b"\x00first-v\xc3\xa4lue"  # binaryData, decoded

    apply(config_map("second-value"))
    wait_for(lambda: "TOKEN second-value" in launcher.logs(f"{ns}/reader"), 60, "the updated value in the file")
    assert blob.read_bytes() == b"\x00second-value"  # the one write swapped both files
    assert len(failed_mounts(cluster, ns)) == 1  # one event for one failure, none after the mount
    delete_reader(cluster, ns, launcher, path)
