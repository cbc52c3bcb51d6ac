"""BYOCOrchestrators: orchestrators the cluster administrator offers to namespaces. Here the operator runs as the
chart installs it by default: namespaces may not bring their own orchestrators, so the only URLs it calls with a
secret are the administrator's, each with the secret declared with it (security review C1, H1)."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from byoc_testenv.orchestrator.process import OrchestratorProcess, orchestrator_spec
from byoc_testenv.polling import wait_for
from lightkube import Client

from tests.support.operator import (
    OPERATOR_NAMESPACE,
    OperatorProcess,
    condition,
    get_worker,
    kubectl_apply,
    worker_manifest,
)

from .test_orchestrator_requests_cluster import Peer, answering
from .test_registration_cluster import capabilities

pytestmark = pytest.mark.cluster

SECRET = "admin-orch-secret-NEVER-SHOWN-c41e"


@pytest.fixture(scope="module")
def admin_only(operator: OperatorProcess) -> Iterator[OperatorProcess]:
    """The session's operator, restarted with namespace orchestrators not allowed (the chart's default)."""
    before = dict(operator.env)
    operator.stop()
    operator.env["BYOC_ALLOW_NAMESPACE_ORCHESTRATORS"] = "false"
    operator.start()
    yield operator
    operator.stop()
    operator.env = before
    operator.start()


@pytest.fixture(scope="module")
def orch() -> Iterator[OrchestratorProcess]:
    with OrchestratorProcess.start(secret=SECRET) as proc:
        yield proc


@pytest.fixture
def cleanup(cluster: Any) -> Iterator[list[str]]:
    """BYOCOrchestrators are cluster-scoped: deleted after the test, not with its namespace."""
    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(Exception):
            cluster.kubectl("delete", "byocorchestrator", name, "--ignore-not-found")


def admin_secret(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": OPERATOR_NAMESPACE},
        "data": {"secret": base64.b64encode(SECRET.encode()).decode()},
    }


def orchestrator(name: str, url: str, secret: str, namespaces: dict[str, str], labels: dict[str, str]) -> dict:
    return {
        "apiVersion": "byoc.livepeer.org/v1alpha1",
        "kind": "BYOCOrchestrator",
        "metadata": {"name": name, "labels": labels},
        "spec": {**orchestrator_spec(url, secret), "namespaceSelector": {"matchLabels": namespaces}},
    }


def byoc(capability: str, **extra: Any) -> dict[str, Any]:
    return {"capability": {"name": capability}, "gpu": {"count": 0}, "registration": {"refreshSeconds": 5}, **extra}


def registered_name(orch: OrchestratorProcess, capability: str) -> str | None:
    cap = capabilities(orch).get(capability)
    return cap["url"] if cap else None


def test_one_orchestrator_resource_wires_every_matching_worker(
    cluster: Any, kube: Client, namespace: str, admin_only: OperatorProcess, orch: OrchestratorProcess, cleanup: list
) -> None:
    tag = namespace[-6:]
    cluster.kubectl("label", "namespace", namespace, f"team={tag}")
    kubectl_apply(cluster, admin_secret(f"orch-{tag}"))
    selected = {"orchestratorRefs": [{"selector": {"matchLabels": {"fleet": tag}}}]}
    kubectl_apply(cluster, worker_manifest("a", namespace, byoc(f"a-{tag}", **selected)))
    kubectl_apply(cluster, worker_manifest("b", namespace, byoc(f"b-{tag}", **selected)))
    wait_for(
        lambda: condition(get_worker(kube, "a", namespace), "Registered").get("reason") == "NoOrchestrators",
        90,
        what="NoOrchestrators",
    )

    # The administrator adds one orchestrator: both workers register with it, with its secret.
    cleanup.append(f"orch-{tag}")
    kubectl_apply(cluster, orchestrator(f"orch-{tag}", orch.url, f"orch-{tag}", {"team": tag}, {"fleet": tag}))
    for name in ("a", "b"):
        want = f"http://{name}-router.{namespace}.svc:8080"
        wait_for(lambda n=name, w=want: registered_name(orch, f"{n}-{tag}") == w, 60, what=f"{name} registered")
        # The status is written after the registration: wait for it to say so.
        entries = wait_for(
            lambda n=name: (get_worker(kube, n, namespace).get("status") or {}).get("orchestrators"),
            30,
            what=f"{name}'s status to list its orchestrator",
        )
        assert [e["url"] for e in entries] == [orch.url]
    dump = cluster.kubectl("get", "byocworker", "-n", namespace, "-o", "yaml").stdout
    dump += cluster.kubectl("get", "events", "-n", namespace, "-o", "yaml").stdout
    assert SECRET not in dump


def test_an_orchestrator_not_offered_to_the_namespace_is_never_called(
    cluster: Any, kube: Client, namespace: str, admin_only: OperatorProcess, orch: OrchestratorProcess, cleanup: list
) -> None:
    tag = namespace[-6:]
    kubectl_apply(cluster, admin_secret(f"other-{tag}"))
    cleanup.append(f"other-{tag}")
    kubectl_apply(cluster, orchestrator(f"other-{tag}", orch.url, f"other-{tag}", {"team": "not-yours"}, {}))
    named = {"orchestratorRefs": [{"name": f"other-{tag}"}, {"name": f"absent-{tag}"}]}
    kubectl_apply(cluster, worker_manifest("w", namespace, byoc(f"w-{tag}", **named)))

    def refused() -> dict[str, Any] | None:
        obj = get_worker(kube, "w", namespace)
        return obj if len((obj.get("status") or {}).get("orchestrators") or []) == 2 else None

    obj = wait_for(refused, 90, what="both references refused")
    # The same words whether it exists elsewhere or not at all.
    assert [e["lastError"] for e in obj["status"]["orchestrators"]] == [
        f"no BYOCOrchestrator 'other-{tag}' is offered to namespace {namespace}",
        f"no BYOCOrchestrator 'absent-{tag}' is offered to namespace {namespace}",
    ]
    assert condition(obj, "Registered")["reason"] == "RegistrationFailed"
    assert f"w-{tag}" not in capabilities(orch)

    # Once the namespace carries the label the administrator chose, it may.
    cluster.kubectl("label", "namespace", namespace, "team=not-yours")
    wait_for(lambda: registered_name(orch, f"w-{tag}") is not None, 60, what="registered once offered")


def test_a_namespace_cannot_bring_its_own_orchestrator_unless_allowed(
    cluster: Any, kube: Client, namespace: str, admin_only: OperatorProcess
) -> None:
    seen: list[str] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(text="ok")

    peer = Peer(answering(record))
    try:
        kubectl_apply(
            cluster,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "db-credentials", "namespace": namespace},
                "data": {"password": base64.b64encode(b"hunter2").decode()},
            },
        )
        ref = orchestrator_spec(peer.url, "db-credentials", "password")
        spec = byoc("own", orchestrators=[ref])
        kubectl_apply(cluster, worker_manifest("own", namespace, spec))

        def refused() -> dict[str, Any] | None:
            obj = get_worker(kube, "own", namespace)
            return obj if (obj.get("status") or {}).get("orchestrators") else None

        obj = wait_for(refused, 90, what="refused")
    finally:
        peer.close()
    (entry,) = obj["status"]["orchestrators"]
    assert entry["url"] == peer.url and "not allowed by this operator (nothing was sent)" in entry["lastError"]
    assert condition(obj, "Registered")["reason"] == "RegistrationFailed"
    assert seen == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"url": "http://o:8935/#", "namespaceSelector": {}}, "spec.url: Invalid value"),
        ({"url": "http://o:8935", "cliUrl": "http://o:7935/x?y", "namespaceSelector": {}}, "spec.cliUrl: Invalid"),
        ({"url": "http://o:8935"}, "spec.namespaceSelector: Required value"),
    ],
)
def test_invalid_orchestrators_are_refused_by_the_api_server(
    cluster: Any, crd_installed: None, spec: dict[str, Any], message: str
) -> None:
    manifest = {"apiVersion": "byoc.livepeer.org/v1alpha1", "kind": "BYOCOrchestrator", "metadata": {"name": "bad"}}
    result = kubectl_apply(cluster, {**manifest, "spec": spec}, check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_worker_references_are_checked_by_the_api_server(cluster: Any, namespace: str, crd_installed: None) -> None:
    both = {"orchestratorRefs": [{"name": "x", "selector": {"matchLabels": {}}}]}
    result = kubectl_apply(cluster, worker_manifest("bad", namespace, both), check=False)
    assert "each spec.orchestratorRefs entry sets either name or selector" in result.stderr
    dynamic = {"orchestratorRefs": [{"name": "x"}], "registration": {"protocol": "live-runner"}}
    result = kubectl_apply(cluster, worker_manifest("bad", namespace, dynamic), check=False)
    assert "spec.orchestratorRefs cannot be used in Live Runner dynamic mode" in result.stderr
