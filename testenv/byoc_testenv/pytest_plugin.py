"""pytest fixtures for a real local cluster (registered through the pytest11 entry point).

    cluster              session-scoped Cluster: started once per test session with
                         `cluster_node_groups` (default: 3 x 4-GPU H100 nodes, 1 A100 node with
                         7 MIG 1g.10gb slices, 1 CPU node) and stopped at the end. With
                         BYOC_TESTENV_KUBECONFIG set, that running cluster is used instead.
                         Missing binaries are built first, with progress shown live.
    cluster_node_groups  session-scoped node layout; override it in a conftest.py to change it.
    namespace            a fresh namespace per test (its default service account ready), deleted after.

Tests that use these fixtures get the `cluster` marker automatically.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator

import pytest

from .cluster import Cluster
from .nodes import NodeGroup, default_node_groups
from .progress import Progress

CLUSTER_FIXTURES = {"cluster", "namespace"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster: needs the local Kubernetes control plane (byoc-testenv)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)


@contextlib.contextmanager
def _uncaptured(config: pytest.Config) -> Iterator[None]:
    """Let progress lines reach the terminal (and CI logs) while a fixture builds or starts things."""
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is None:
        yield
        return
    with capman.global_and_fixture_disabled():
        yield


@pytest.fixture(scope="session")
def cluster_node_groups() -> list[NodeGroup]:
    return default_node_groups()


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest, cluster_node_groups: list[NodeGroup]) -> Iterator[Cluster]:
    external = os.environ.get("BYOC_TESTENV_KUBECONFIG")
    if external:
        yield Cluster.attach(external)
        return
    with _uncaptured(request.config):
        c = Cluster.start(cluster_node_groups, progress=Progress())
    try:
        yield c
    finally:
        with _uncaptured(request.config):
            c.stop()


def namespace_name(test_name: str) -> str:
    """A DNS-1123 label unique to this test: t-<test name>-<random>, at most 63 chars."""
    slug = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")
    slug = re.sub(r"-+", "-", slug)[:48].strip("-") or "test"
    return f"t-{slug}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = cluster.create_namespace(namespace_name(request.node.name), labels={"byoc-testenv/test": "true"})
    try:
        yield name
    finally:
        # Not waiting: namespace deletion is asynchronous in a real cluster too.
        with contextlib.suppress(Exception):
            cluster.delete_namespace(name, wait=False)
