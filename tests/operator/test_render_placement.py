"""Rendering of placement (spread, disruption budget), the network policy and security contexts."""

from __future__ import annotations

from typing import Any

import pytest
from byoc_operator import api
from byoc_operator.pod_policy import PodPolicy
from byoc_operator.render import Worker, render_deployment
from byoc_operator.render.network import render_network_policies
from byoc_operator.render.placement import render_disruption_budget
from byoc_operator.render.registrar import registrar_container
from byoc_operator.render.router import render_router_deployment


def worker(spec: dict[str, Any]) -> Worker:
    body = {"metadata": {"name": "w", "namespace": "ns", "uid": "u1", "generation": 1}, "spec": spec}
    return Worker.from_body(body, "registry.local/byoc-runtime:1")


def pod_spec(spec: dict[str, Any]) -> dict[str, Any]:
    return render_deployment(worker(spec))["spec"]["template"]["spec"]


def test_spread_across_nodes_and_gpu_products_selects_only_this_workers_pods() -> None:
    spread = pod_spec({"scheduling": {"spread": {"acrossNodes": True, "acrossGpuProducts": True}}})[
        "topologySpreadConstraints"
    ]
    assert [c["topologyKey"] for c in spread] == ["kubernetes.io/hostname", "nvidia.com/gpu.product"]
    for c in spread:
        assert c["whenUnsatisfiable"] == "ScheduleAnyway" and c["maxSkew"] == 1
        assert c["labelSelector"]["matchLabels"]["byoc.livepeer.org/worker"] == "w"


def test_user_topology_constraints_follow_and_default_their_selector() -> None:
    extra = {"maxSkew": 2, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}
    spec = {
        "scheduling": {
            "spread": {"acrossNodes": True, "whenUnsatisfiable": "DoNotSchedule"},
            "topologySpreadConstraints": [extra],
        }
    }
    spread = pod_spec(spec)["topologySpreadConstraints"]
    assert spread[0]["whenUnsatisfiable"] == "DoNotSchedule"
    assert spread[1]["topologyKey"] == "topology.kubernetes.io/zone" and spread[1]["maxSkew"] == 2
    assert spread[1]["labelSelector"] == {"matchLabels": worker({}).selector_labels}


def test_no_spread_no_constraints() -> None:
    assert "topologySpreadConstraints" not in pod_spec({})


def test_priority_class_reaches_the_pods() -> None:
    assert pod_spec({"scheduling": {"priorityClassName": "gpu-high"}})["priorityClassName"] == "gpu-high"


@pytest.mark.parametrize(
    "budget,field,value",
    [({"minAvailable": 2}, "minAvailable", 2), ({"maxUnavailable": "25%"}, "maxUnavailable", "25%")],
)
def test_disruption_budget(budget: dict[str, Any], field: str, value: Any) -> None:
    pdb = render_disruption_budget(worker({"disruptionBudget": budget}))
    assert pdb is not None and pdb["kind"] == "PodDisruptionBudget"
    assert pdb["spec"][field] == value and len(pdb["spec"]) == 3
    assert pdb["spec"]["selector"]["matchLabels"] == worker({}).selector_labels
    assert pdb["metadata"]["ownerReferences"][0]["uid"] == "u1"


def test_disruption_budget_is_optional_and_takes_exactly_one_limit() -> None:
    assert render_disruption_budget(worker({})) is None
    # pydantic accepts both; the CRD's CEL rule refuses it (tests/operator/test_validation_cluster.py).
    assert api.DisruptionBudget.model_validate({"minAvailable": 1}).max_unavailable is None


OPERATOR = PodPolicy(operator_namespace="byoc-system", operator_instance="prod")
OPERATOR_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "byoc-system"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "byoc-operator", "app.kubernetes.io/instance": "prod"}},
}
ROUTER_PEER = {
    "podSelector": {"matchLabels": {"byoc.livepeer.org/worker": "w", "app.kubernetes.io/component": "router"}}
}
BYOC = {"orchestrators": [{"url": "https://o:8935", "secretRef": {"name": "s"}}]}


def policies(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    body = {"metadata": {"name": "w", "namespace": "ns", "uid": "u1", "generation": 1}, "spec": spec}
    out = render_network_policies(Worker.from_body(body, "registry.local/byoc-runtime:1", OPERATOR))
    return {p["metadata"]["name"]: p["spec"] for p in out}


def test_routed_worker_pods_take_calls_from_their_router_and_the_operator_only() -> None:
    orch = {"ipBlock": {"cidr": "10.0.0.0/24"}}
    got = policies({**BYOC, "container": {"image": "acme/w:1", "port": 9000}})
    assert set(got) == {"w", "w-router"}
    pods = got["w"]
    assert pods["podSelector"]["matchLabels"] == worker({}).selector_labels and pods["policyTypes"] == ["Ingress"]
    # One port (not the sidecar's 8090: /drain), and the operator by namespace and release, not by a label alone.
    assert pods["ingress"] == [{"ports": [{"protocol": "TCP", "port": 9000}], "from": [ROUTER_PEER, OPERATOR_PEER]}]
    # The router serves orchestrators, wherever they are, on its port only; allowFrom narrows both.
    assert got["w-router"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}]
    assert got["w-router"]["podSelector"]["matchLabels"] == ROUTER_PEER["podSelector"]["matchLabels"]
    narrowed = policies({**BYOC, "networkPolicy": {"allowFrom": [orch]}})
    assert narrowed["w-router"]["ingress"][0]["from"] == [OPERATOR_PEER, orch]
    assert narrowed["w"]["ingress"][0]["from"] == [ROUTER_PEER, OPERATOR_PEER, orch]


def test_pods_called_directly_serve_their_port_only() -> None:
    live_runner = {**BYOC, "registration": {"protocol": "live-runner"}}
    for spec in (live_runner, {}):
        (pods,) = policies(spec).values()
        assert pods["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8000}]}], spec
    orch = {"namespaceSelector": {"matchLabels": {"team": "orchestrators"}}}
    (pods,) = policies({**live_runner, "networkPolicy": {"allowFrom": [orch]}}).values()
    assert pods["ingress"][0]["from"] == [OPERATOR_PEER, orch]


def test_network_policies_can_be_switched_off() -> None:
    assert policies({**BYOC, "networkPolicy": {"enabled": False}}) == {}
    # Without the chart's identity (an operator outside the cluster) no operator peer is rendered.
    (pods,) = [p for p in render_network_policies(worker(BYOC)) if p["metadata"]["name"] == "w"]
    assert pods["spec"]["ingress"][0]["from"] == [ROUTER_PEER]


def test_bundled_images_run_non_root_without_escalation() -> None:
    lr = {
        "orchestrators": [{"url": "http://o:1", "secretRef": {"name": "s"}}],
        "registration": {"protocol": "live-runner"},
    }
    byoc = {"orchestrators": [{"url": "http://o:1", "secretRef": {"name": "s"}}]}
    contexts = [
        pod_spec({})["containers"][0]["securityContext"],
        registrar_container(worker(lr))["securityContext"],
        render_router_deployment(worker(byoc))["spec"]["template"]["spec"]["containers"][0]["securityContext"],
    ]
    for ctx in contexts:
        assert ctx["runAsNonRoot"] is True and ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert pod_spec({})["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}


def test_user_image_keeps_its_user_but_may_not_escalate_unless_told() -> None:
    ctx = pod_spec({"container": {"image": "acme/w:1"}})["containers"][0]["securityContext"]
    assert ctx == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    ctx = pod_spec(
        {
            "container": {
                "image": "acme/w:1",
                "securityContext": {"runAsUser": 1000, "capabilities": {"add": ["SYS_PTRACE"]}},
            }
        }
    )["containers"][0]["securityContext"]
    # What the spec sets replaces the default field by field: the rest of the hardening stays.
    assert ctx == {
        "runAsUser": 1000,
        "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["SYS_PTRACE"], "drop": ["ALL"]},
    }
    assert pod_spec({"podSecurityContext": {"fsGroup": 2000}})["securityContext"] == {
        "fsGroup": 2000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    localhost = {"type": "Localhost", "localhostProfile": "profiles/w.json"}
    assert pod_spec({"podSecurityContext": {"seccompProfile": localhost}})["securityContext"] == {
        "seccompProfile": localhost
    }


def test_a_user_variable_replaces_the_operators_of_the_same_name() -> None:
    env = pod_spec({"container": {"image": "acme/w:1", "env": [{"name": "POD_NAME", "value": "mine"}]}})["containers"][
        0
    ]["env"]
    names = [e["name"] for e in env]
    assert names.count("POD_NAME") == 1 and {"name": "POD_NAME", "value": "mine"} in env
    assert "POD_IP" in names
