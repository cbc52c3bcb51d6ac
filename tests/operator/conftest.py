"""Fixtures for operator tests on the real local control plane (see byoc_testenv's `cluster` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from byoc_operator import crd
from lightkube import Client, KubeConfig

from tests.support.operator import OPERATOR_NAMESPACE, ROOT, OperatorProcess


@pytest.fixture(scope="session")
def kube(cluster: Any) -> Client:
    return Client(config=KubeConfig.from_file(str(cluster.kubeconfig)), field_manager="byoc-tests")


@pytest.fixture(scope="session")
def crd_installed(cluster: Any) -> None:
    for name in crd.files():
        cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds" / name))
    cluster.wait_established(crd.CRD_NAME, crd.ORCHESTRATOR_CRD_NAME)


# Package scope: an operator left running after these tests (it watches every namespace, with the default pod
# policy) would reconcile the workers later suites create and reconcile themselves (tests/property).
@pytest.fixture(scope="package")
def operator(cluster: Any, crd_installed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    cluster.create_namespace(OPERATOR_NAMESPACE)
    proc = OperatorProcess(str(cluster.kubeconfig), tmp_path_factory.mktemp("operator") / "operator.log")
    proc.start()
    yield proc
    proc.stop()
    print("---- operator log (tail) ----\n" + proc.log_tail(200))
