"""The byoc-testenv command and cleanup of clusters whose owner died."""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from byoc_testenv import cli, cluster
from byoc_testenv.nodes import default_node_groups
from byoc_testenv.pytest_plugin import namespace_name

CLI = [sys.executable, "-m", "byoc_testenv.cli"]


def up_args(*argv: str) -> argparse.Namespace:
    return cli._parser().parse_args(["up", *argv])


def test_up_defaults_are_the_default_layout():
    groups = cli.node_groups_from_args(up_args())
    assert [(g.name, g.count, g.gpus_per_node, dict(g.mig)) for g in groups] == [
        (g.name, g.count, g.gpus_per_node, dict(g.mig)) for g in default_node_groups()
    ]


def test_up_flags_shape_the_nodes():
    groups = cli.node_groups_from_args(
        up_args(
            "--nodes",
            "2",
            "--gpus-per-node",
            "8",
            "--gpu-product",
            "NVIDIA-L4",
            "--mig",
            "1g.10gb=7",
            "--mig",
            "2g.20gb=3",
            "--cpu-nodes",
            "0",
        )
    )
    assert [(g.name, g.count, g.gpus_per_node) for g in groups] == [("gpu-l4", 2, 8), ("gpu-a100-mig", 1, 0)]
    assert dict(groups[1].mig) == {"1g.10gb": 7, "2g.20gb": 3}
    assert cli.node_groups_from_args(up_args("--nodes", "0", "--mig-nodes", "0", "--cpu-nodes", "2"))[0].name == "cpu"


def test_bad_mig_flag():
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_mig(["1g.10gb"])


def test_namespace_names_are_dns_labels():
    name = namespace_name("test_something[with-Params_and/slashes and a very long tail " + "x" * 80 + "]")
    assert len(name) <= 63 and name.startswith("t-")
    assert all(c.isalnum() or c == "-" for c in name) and name == name.lower()


def _alive(home: str) -> list[int]:
    return cluster._pids_of(home)


@pytest.mark.cluster
def test_up_detach_kubectl_down():
    name = f"cli-{secrets.token_hex(3)}"
    out = subprocess.run(
        [
            *CLI,
            "up",
            "--detach",
            "--name",
            name,
            "--nodes",
            "1",
            "--gpus-per-node",
            "2",
            "--mig-nodes",
            "0",
            "--cpu-nodes",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    export = next(line for line in out.stdout.splitlines() if line.startswith("export KUBECONFIG="))
    kubeconfig = export.split("=", 1)[1]
    entry = next(e for e in cluster.registered() if e["name"] == name)
    try:
        assert entry["detached"] and Path(kubeconfig).exists()
        env = {**os.environ, "BYOC_TESTENV_CLUSTER": name}
        env.pop("BYOC_TESTENV_KUBECONFIG", None)
        nodes = subprocess.run(
            [*CLI, "kubectl", "get", "nodes", "-o", "name"], env=env, capture_output=True, text=True, timeout=60
        )
        assert nodes.stdout.split() == ["node/gpu-h100-0"], nodes.stderr
        kc = subprocess.run([*CLI, "kubeconfig"], env=env, capture_output=True, text=True, timeout=60)
        assert kc.stdout.strip() == kubeconfig
        # A later start must not remove a detached cluster as stale.
        cluster.clean_stale()
        assert _alive(entry["home"])
    finally:
        down = subprocess.run([*CLI, "down", "--name", name], capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert not _alive(entry["home"]) and not Path(entry["home"]).exists()
    assert name not in {e["name"] for e in cluster.registered()}


@pytest.mark.cluster
def test_up_in_foreground_stops_on_ctrl_c():
    name = f"fg-{secrets.token_hex(3)}"
    proc = subprocess.Popen(
        [*CLI, "up", "--name", name, "--nodes", "1", "--mig-nodes", "0", "--cpu-nodes", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("running; Ctrl-C"):
                break
        entry = next(e for e in cluster.registered() if e["name"] == name)
        assert _alive(entry["home"]), "".join(lines)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not _alive(entry["home"]) and not Path(entry["home"]).exists()


@pytest.mark.cluster
def test_cluster_of_a_killed_run_is_cleaned_up_on_next_start():
    script = (
        "import sys, time\nfrom byoc_testenv import Cluster\n"
        "c = Cluster.start([])\nprint(c.name, c.home, flush=True)\ntime.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None
        name, home = proc.stdout.readline().split()
        assert _alive(home)
    finally:
        proc.kill()  # SIGKILL: no finalizers, no atexit
        proc.wait()
    time.sleep(0.5)
    assert _alive(home)  # the components outlive their owner...
    assert name in cluster.clean_stale()  # ...until the next start sweeps them away
    assert not _alive(home) and not Path(home).exists()
