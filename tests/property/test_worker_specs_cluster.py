"""BYOCWorker specs against the real API server and the operator's reconciler (hypothesis).

- Specs within the models' bounds are accepted (or refused only by a cross-field CEL rule, with its message),
  render and get a status without exceptions, and a running Reconciler creates their children.
- A spec with one broken field is refused with a 422 that names the field; a spec breaking a cross-field rule
  is refused with that rule's message.
- An object the API server stores but the models refuse (the schema's regexes are RE2, where \\s is ASCII
  only; pydantic's are Unicode) becomes Degraded/InvalidSpec without stopping the reconcile of the others.

Many objects go to one namespace of the session's cluster; the reconciler runs in this process on indexes
filled from the API server, as kopf would fill them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pydantic
import pytest
from byoc_operator import api, crd
from byoc_operator.config import OperatorConfig
from byoc_operator.reconcile import Indexes, Reconciler, spec_error_message
from byoc_operator.render import Worker, render_deployment, render_service
from byoc_operator.render.router import render_pods_service, render_router_deployment, render_router_service
from byoc_operator.status import compute_status, invalid_spec_status
from byoc_testenv.pytest_plugin import namespace_name
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lightkube import AsyncClient, KubeConfig
from lightkube.config.client_adapter import Client as HttpClient
from lightkube.config.client_adapter import ConnectionParams

from .worker_specs import CLOSED_PORT_URL, POLICY, Mutation, mutations, valid_specs

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_IMAGE = "registry.local/byoc-runtime:test"
NOW = "2030-01-01T00:00:00Z"
SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
_names = itertools.count()


def rule_messages(node: Any) -> set[str]:
    """Every message of the CRD's CEL rules (what a refusal by a cross-field rule says)."""
    if isinstance(node, dict):
        found = {r["message"] for r in node.get("x-kubernetes-validations", ())}
        return found.union(*(rule_messages(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(rule_messages(v) for v in node))
    return set()


RULES = rule_messages(crd.definition())


@pytest.fixture(scope="module")
def kubeconfig(cluster: Any) -> str:
    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds" / crd.CRD_FILE))
    cluster.wait_established(crd.CRD_NAME)
    return str(cluster.kubeconfig)


@pytest.fixture(scope="module")
def api_server(kubeconfig: str) -> Iterator[httpx2.Client]:
    with HttpClient(KubeConfig.from_file(kubeconfig).get(), ConnectionParams()) as http:
        yield http


@pytest.fixture(scope="module")
def spec_namespace(cluster: Any, kubeconfig: str) -> Iterator[str]:
    name = cluster.create_namespace(namespace_name("property-specs"), labels={"byoc-testenv/test": "true"})
    yield name
    cluster.delete_namespace(name, wait=False)


def create(http: httpx2.Client, namespace: str, spec: dict[str, Any]) -> httpx2.Response:
    """POST a BYOCWorker with strict field validation, as kubectl does."""
    manifest = {
        "apiVersion": f"{api.GROUP}/{api.VERSION}",
        "kind": api.KIND,
        "metadata": {"name": f"w{next(_names)}", "namespace": namespace},
        "spec": spec,
    }
    return http.post(
        f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{namespace}/{api.PLURAL}",
        params={"fieldValidation": "Strict"},
        json=manifest,
    )


def workers(http: httpx2.Client, namespace: str) -> list[dict[str, Any]]:
    resp = http.get(f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{namespace}/{api.PLURAL}")
    resp.raise_for_status()
    return resp.json()["items"]


def names(http: httpx2.Client, url: str) -> set[str]:
    resp = http.get(url)
    resp.raise_for_status()
    return {item["metadata"]["name"] for item in resp.json()["items"]}


def render_everything(body: dict[str, Any]) -> Worker:
    """The operator's pure path for one object, with the invariants every rendering keeps."""
    worker = Worker.from_body(body, RUNTIME_IMAGE)
    deployment, service = render_deployment(worker), render_service(worker)
    assert deployment["spec"]["replicas"] == worker.spec.replicas
    template = deployment["spec"]["template"]
    assert worker.selector_labels.items() <= template["metadata"]["labels"].items()
    assert deployment["spec"]["selector"]["matchLabels"] == worker.selector_labels
    assert service["spec"]["selector"] == worker.selector_labels
    if worker.uses_router:
        for child in (render_pods_service(worker), render_router_deployment(worker), render_router_service(worker)):
            assert child["metadata"]["ownerReferences"][0]["uid"] == worker.uid
    status = compute_status(worker, None, [], body.get("status"), NOW)
    assert status["ready"] == f"0/{worker.spec.replicas}" and status["observedGeneration"] == worker.generation
    return worker


async def reconcile_all(kubeconfig: str, bodies: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """One Reconciler over these objects until it is idle, as the operator's first pass after a start."""
    events: list[tuple[str, str, str]] = []
    reconciler = Reconciler(
        AsyncClient(config=KubeConfig.from_file(kubeconfig), field_manager="byoc-operator"),
        # The specs name their orchestrators (docs/security.md).
        OperatorConfig(runtime_image=RUNTIME_IMAGE, policy=POLICY, allow_namespace_orchestrators=True),
        post_event=lambda body, type_, reason, message: events.append((body["metadata"]["name"], reason, message)),
    )
    indexes = Indexes(**{f.name: {} for f in dataclasses.fields(Indexes)})
    indexes.workers = {(b["metadata"]["namespace"], b["metadata"]["name"]): [b] for b in bodies}
    reconciler.bind(indexes)
    try:
        reconciler.trigger_all()
        await asyncio.wait_for(reconciler.idle(), 240)
    finally:
        await reconciler.close()
    return events


def condition(body: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (body.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


def test_specs_within_the_models_bounds_are_accepted_rendered_and_reconciled(
    api_server: httpx2.Client, spec_namespace: str, kubeconfig: str, caplog: pytest.LogCaptureFixture
) -> None:
    accepted: list[str] = []
    refused: list[str] = []

    @SETTINGS
    @given(spec=valid_specs())
    def check(spec: dict[str, Any]) -> None:
        resp = create(api_server, spec_namespace, spec)
        if resp.status_code == 201:
            body = resp.json()
            render_everything(body)  # as stored: with the API server's defaults
            accepted.append(body["metadata"]["name"])
            return
        message = resp.json().get("message", "")
        assert resp.status_code == 422, resp.text
        assert any(rule in message for rule in RULES), f"refused, but not by a CEL rule: {message}"
        refused.append(message)

    check()
    # Not vacuous: most specs the strategy makes must get through.
    assert len(accepted) >= len(refused), refused

    caplog.set_level(logging.WARNING, logger="byoc_operator")
    bodies = [b for b in workers(api_server, spec_namespace) if b["metadata"]["name"] in accepted]
    asyncio.run(reconcile_all(kubeconfig, bodies))
    assert not [r.getMessage() for r in caplog.records if "reconcile of" in r.getMessage()]

    base = f"/apis/apps/v1/namespaces/{spec_namespace}"
    deployments = names(api_server, f"{base}/deployments")
    services = names(api_server, f"/api/v1/namespaces/{spec_namespace}/services")
    for body in workers(api_server, spec_namespace):
        name = body["metadata"]["name"]
        if name not in accepted:
            continue
        degraded = condition(body, "Degraded")
        assert degraded.get("reason") not in (None, "ReconcileError", "InvalidSpec"), (name, degraded, body["spec"])
        worker = Worker.from_body(body, RUNTIME_IMAGE)
        assert worker.deployment_name in deployments and worker.service_name in services, name
        if worker.uses_router:
            assert worker.router_name in deployments and worker.pods_service_name in services, name
        # (the autoscaler may have moved spec.replicas since: observed is at most the current generation)
        assert 1 <= body["status"]["observedGeneration"] <= body["metadata"]["generation"]


@SETTINGS
@given(mutation=mutations())
def test_a_broken_field_is_refused_with_its_name(
    api_server: httpx2.Client, spec_namespace: str, mutation: Mutation
) -> None:
    resp = create(api_server, spec_namespace, mutation.spec)
    # 422 from the schema; 400 from strict decoding when an object stands where a scalar belongs
    assert resp.status_code in (400, 422), (mutation, resp.text)
    message = resp.json()["message"]
    assert mutation.field in message, (mutation, message)
    by_rule = any(rule in message for rule in RULES)
    # The models refuse it too (the operator would report InvalidSpec), unless only a CEL rule knows the format.
    try:
        api.BYOCWorkerSpec.model_validate(mutation.spec)
    except pydantic.ValidationError as exc:
        # the operator's InvalidSpec message names the same field (its own spelling: orchestrators.0.url)
        assert mutation.field.replace("[", ".").replace("]", "") in spec_error_message(exc), (mutation, exc)
    else:
        assert by_rule, (mutation, message)


SECRET = {"name": "orch-secret"}
RULE_BREAKERS = st.one_of(
    st.builds(
        lambda image: {"runtime": {}, "container": {"image": image}},
        st.sampled_from(["ghcr.io/a/b:1", "worker"]),
    ),
    st.builds(lambda n: {"gpu": {"count": n, "migProfile": "1g.10gb"}}, st.integers(0, 16).filter(lambda n: n != 1)),
    st.builds(
        lambda surge, unavailable: {"rollout": {"maxSurge": surge, "maxUnavailable": unavailable}},
        st.sampled_from([0, "0", "0%"]),
        st.sampled_from([0, "0%"]),
    ),
    st.builds(
        lambda where, key: {"resources": {where: {key: 1}}},
        st.sampled_from(["requests", "limits"]),
        st.sampled_from(["nvidia.com/gpu", "nvidia.com/mig-1g.10gb"]),
    ),
    st.just(
        {
            "orchestrators": [
                {
                    "url": CLOSED_PORT_URL,
                    "secretRef": SECRET,
                    "tls": {"caBundleSecretRef": SECRET, "insecureSkipVerify": True},
                }
            ]
        }
    ),
    st.builds(lambda low: {"autoscaling": {"minReplicas": low, "maxReplicas": low - 1}}, st.integers(2, 1000)),
    st.just({"disruptionBudget": {"minAvailable": 1, "maxUnavailable": "50%"}}),
    st.just({"disruptionBudget": {}}),
    st.just({"orchestrators": [{"url": CLOSED_PORT_URL}]}),
)


@SETTINGS
@given(spec=RULE_BREAKERS)
def test_a_broken_cross_field_rule_is_refused_with_its_message(
    api_server: httpx2.Client, spec_namespace: str, spec: dict[str, Any]
) -> None:
    resp = create(api_server, spec_namespace, spec)
    assert resp.status_code == 422, (spec, resp.text)
    message = resp.json()["message"]
    assert any(rule in message for rule in RULES), message


# Whitespace outside ASCII: the schema's RE2 `[^\s]` lets it through, the models' Unicode regex does not.
UNICODE_SPACES = st.sampled_from(["\u00a0", "\u2003", "\u3000", "\u2028", "\u202f"])


@settings(SETTINGS, max_examples=5)
@given(space=UNICODE_SPACES, field=st.sampled_from(["url", "cliUrl"]))
def test_a_stored_spec_the_models_refuse_is_reported_not_fatal(
    api_server: httpx2.Client, spec_namespace: str, kubeconfig: str, space: str, field: str
) -> None:
    entry = {
        "url": CLOSED_PORT_URL,
        "secretRef": SECRET,
        "tls": {"allowPlaintext": True},
        field: f"http://orch{space}0:8935",
    }
    bad = create(api_server, spec_namespace, {"replicas": 0, "orchestrators": [entry]})
    assert bad.status_code == 201, bad.text  # if the API server starts refusing it, this test has served
    good = create(api_server, spec_namespace, {"replicas": 0})
    assert good.status_code == 201, good.text
    bad_body, good_body = bad.json(), good.json()
    with pytest.raises(pydantic.ValidationError) as refused:
        Worker.from_body(bad_body, RUNTIME_IMAGE)
    status = invalid_spec_status(bad_body, spec_error_message(refused.value), NOW)
    assert f"spec.orchestrators.0.{field}" in condition({"status": status}, "Degraded")["message"]

    events = asyncio.run(reconcile_all(kubeconfig, [bad_body, good_body]))
    stored = {b["metadata"]["name"]: b for b in workers(api_server, spec_namespace)}
    degraded = condition(stored[bad_body["metadata"]["name"]], "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "InvalidSpec"
    assert f"spec.orchestrators.0.{field}" in degraded["message"]
    assert (bad_body["metadata"]["name"], "InvalidSpec") in {(n, r) for n, r, _ in events}
    ok = stored[good_body["metadata"]["name"]]
    assert condition(ok, "Ready")["reason"] == "ScaledToZero"
    assert Worker.from_body(ok, RUNTIME_IMAGE).deployment_name in names(
        api_server, f"/apis/apps/v1/namespaces/{spec_namespace}/deployments"
    )
