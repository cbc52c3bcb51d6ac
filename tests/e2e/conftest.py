"""The whole system on one machine: a local cluster whose pods really run (byoc_testenv.launcher), the operator
as a process, the test orchestrator resolving Service names through the launcher's hosts file, and a real
trickle server (the ``trickle_server`` fixture)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from byoc_testenv import Cluster, CPUNodeGroup, GPUNodeGroup
from byoc_testenv.demo import operator_process
from byoc_testenv.launcher import Launcher, LocalImage, launcher_stages, runtime_images
from byoc_testenv.orchestrator import OrchestratorProcess
from byoc_testenv.trickle import TrickleServer

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "registry.local/byoc-runtime:e2e"
# A small image for the launcher's own tests: its "python" is this interpreter.
PY_IMAGE = "registry.local/python:3.11"
IMAGES = {**runtime_images(IMAGE), PY_IMAGE: LocalImage(entrypoint=("python",), commands={"python": sys.executable})}
SECRET = "e2e-orch-secret-9d2f"
EXTERNAL = os.environ.get("BYOC_TESTENV_KUBECONFIG")  # a running cluster: kwok marks pods Ready before the probe
T = TypeVar("T")


@pytest.fixture(scope="package")
def e2e_cluster() -> Iterator[Cluster]:
    """Its own cluster: the launcher's kwok stage (Ready only once a probe passes) is fixed at cluster start.
    With BYOC_TESTENV_KUBECONFIG that cluster is used instead, and kwok reports pods Ready a little early."""
    with contextlib.ExitStack() as stack:
        if EXTERNAL:
            cluster = Cluster.attach(EXTERNAL)
        else:
            groups = [GPUNodeGroup("gpu", count=1, gpus_per_node=4), CPUNodeGroup("cpu", count=1)]
            cluster = stack.enter_context(Cluster.start(groups, extra_stages=launcher_stages(IMAGES)))
        cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        cluster.wait_established("byocworkers.byoc.livepeer.org")
        yield cluster


@pytest.fixture(scope="package")
def launcher(e2e_cluster: Cluster) -> Iterator[Launcher]:
    with Launcher.start(e2e_cluster, image_map=IMAGES, max_probe_period=1.0) as proc:
        yield proc
    print("---- launcher log (tail) ----\n" + "\n".join(proc.read_log().splitlines()[-80:]))


@pytest.fixture(scope="module")
def orch(trickle_server: TrickleServer, launcher: Launcher) -> Iterator[OrchestratorProcess]:
    with OrchestratorProcess.start(
        secret=SECRET, trickle_base_url=trickle_server.base_url, hosts_file=launcher.hosts_file
    ) as proc:
        yield proc
        print("---- test orchestrator log (tail) ----\n" + "\n".join(proc.read_log().splitlines()[-40:]))


@pytest.fixture(scope="module")
def operator(e2e_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    env = {"BYOC_RUNTIME_IMAGE": IMAGE, "BYOC_RESYNC_SECONDS": "2", "BYOC_TOKEN_PROPAGATION_SECONDS": "5"}
    with operator_process(e2e_cluster, log_path, env):
        yield log_path
    print("---- operator log (tail) ----\n" + "\n".join(log_path.read_text(errors="replace").splitlines()[-60:]))


@pytest.fixture
def e2e_namespace(e2e_cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    from byoc_testenv.pytest_plugin import namespace_name

    name = e2e_cluster.create_namespace(namespace_name(request.node.name))
    yield name
    e2e_cluster.delete_namespace(name, wait=False)
