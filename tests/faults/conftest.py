"""The fault suite's world: its own local cluster (two 1-GPU nodes and a CPU node, so a node can be lost and GPUs
run short), the launcher running router and runtime pods as real processes, the operator as a process that can be
SIGKILLed and started again, and a test orchestrator whose faults the tests switch on and off.

The operator runs with the production resync period (600 s): recovery here never leans on a test-only fast
resync, only on the watches, the registration refresh and the operator's own retries.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from byoc_testenv import Cluster, CPUNodeGroup, GPUNodeGroup
from byoc_testenv.launcher import Launcher, launcher_stages, runtime_images
from byoc_testenv.orchestrator import OrchestratorProcess
from byoc_testenv.pytest_plugin import namespace_name
from lightkube import Client, KubeConfig

from tests.support.operator import OperatorProcess

from .support import SECRET

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "registry.local/byoc-runtime:faults"
IMAGES = runtime_images(IMAGE)


@pytest.fixture(scope="package")
def faults_cluster() -> Iterator[Cluster]:
    """Started here, not attached: the API server restart needs a cluster this process owns."""
    groups = [GPUNodeGroup("gpu", count=2, gpus_per_node=1), CPUNodeGroup("cpu", count=1)]
    with Cluster.start(groups, extra_stages=launcher_stages(IMAGES)) as cluster:
        cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        cluster.wait_established("byocworkers.byoc.livepeer.org")
        yield cluster


@pytest.fixture(scope="package")
def kube(faults_cluster: Cluster) -> Client:
    return Client(config=KubeConfig.from_file(str(faults_cluster.kubeconfig)), field_manager="byoc-fault-tests")


@pytest.fixture(scope="package")
def launcher(faults_cluster: Cluster) -> Iterator[Launcher]:
    with Launcher.start(faults_cluster, image_map=IMAGES, max_probe_period=1.0) as proc:
        yield proc
    print("---- launcher log (tail) ----\n" + "\n".join(proc.read_log().splitlines()[-60:]))


@pytest.fixture(scope="package")
def operator(
    faults_cluster: Cluster, launcher: Launcher, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    proc = OperatorProcess(
        str(faults_cluster.kubeconfig), log_path, {"BYOC_RESYNC_SECONDS": "600", "BYOC_RUNTIME_IMAGE": IMAGE}
    )
    proc.start()
    yield proc
    proc.stop()
    print("---- operator log (tail) ----\n" + proc.log_tail(200))


@pytest.fixture(scope="package")
def orch(launcher: Launcher) -> Iterator[OrchestratorProcess]:
    """Registration-only orchestrator (no trickle server); tests that stream or restart it start their own."""
    with OrchestratorProcess.start(secret=SECRET, hosts_file=launcher.hosts_file) as proc:
        yield proc


@pytest.fixture
def ns(faults_cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = faults_cluster.create_namespace(namespace_name(request.node.name), labels={"byoc-testenv/test": "true"})
    yield name
    faults_cluster.delete_namespace(name, wait=False)
