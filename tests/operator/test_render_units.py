"""The small rendering helpers (render/probes.py, token.py, origins.py, network.py, security.py, service.py,
placement.py), pinned down: whole objects, so every key and value a kubelet or the API server reads is checked, not
only the ones a scenario needs."""

from __future__ import annotations

import base64
from typing import Any

from byoc_operator.pod_policy import PodPolicy
from byoc_operator.render import Worker
from byoc_operator.render.network import operator_peer, render_network_policies
from byoc_operator.render.origins import render_origins_configmap
from byoc_operator.render.placement import render_disruption_budget, topology_spread
from byoc_operator.render.probes import probes
from byoc_operator.render.security import hardened
from byoc_operator.render.service import render_service
from byoc_operator.render.token import render_token_secret, uses_token, with_token

ORCHESTRATORS = [{"url": "http://o:8935", "secretRef": {"name": "s"}}]
LIVE_RUNNER = {"orchestrators": ORCHESTRATORS, "registration": {"protocol": "live-runner"}}


def worker(spec: dict[str, Any], policy: PodPolicy | None = None) -> Worker:
    body = {"metadata": {"name": "w", "namespace": "ns", "uid": "u1", "generation": 1}, "spec": spec}
    return Worker.from_body(body, "registry.local/byoc-runtime:1", policy)


def test_probes_in_full() -> None:
    w = worker({"probes": {"startupTimeoutSeconds": 25, "periodSeconds": 10, "failureThreshold": 4}})
    ready = {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 5}
    assert probes(w) == {
        "startupProbe": {**ready, "failureThreshold": 3},  # 25 s at one probe per 10 s: three tries
        "readinessProbe": {**ready, "failureThreshold": 4},
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": "http"},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 4,
        },
    }
    # A startup budget shorter than one period still gets its one try.
    quick = worker({"probes": {"startupTimeoutSeconds": 10, "periodSeconds": 30}})
    assert probes(quick)["startupProbe"]["failureThreshold"] == 1


def test_the_token_file_goes_only_to_routed_workers_and_keeps_what_the_container_had() -> None:
    routed = worker({"orchestrators": ORCHESTRATORS})
    assert uses_token(routed)
    mount = {"name": "byoc-token", "mountPath": "/var/run/byoc/token", "readOnly": True}
    assert with_token(routed, {"name": "c"}, "P_") == {
        "name": "c",
        "env": [{"name": "P_TOKEN_FILE", "value": "/var/run/byoc/token/token"}],
        "volumeMounts": [mount],
    }
    own = {"name": "c", "env": [{"name": "A", "value": "1"}], "volumeMounts": [{"name": "v", "mountPath": "/v"}]}
    got = with_token(routed, own, "P_")
    assert got["env"][0] == own["env"][0] and got["volumeMounts"] == [own["volumeMounts"][0], mount]
    # A Live Runner worker naming a token Secret has no router to hand it to: nothing is mounted.
    lr = worker({**LIVE_RUNNER, "registration": {"protocol": "live-runner", "tokenSecretRef": {"name": "t"}}})
    assert not uses_token(lr) and with_token(lr, {"name": "c"}, "P_") == {"name": "c"}


def test_the_generated_token_secret_in_full() -> None:
    routed = worker({"orchestrators": ORCHESTRATORS})
    assert render_token_secret(routed, "s3cret") == {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": routed.metadata("w-token"),
        "data": {"token": base64.b64encode(b"s3cret").decode()},
    }


def test_the_origins_configmap_in_full() -> None:
    w = worker(LIVE_RUNNER)
    assert render_origins_configmap(w, ["https://o:8935"]) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": w.metadata("w-origins"),
        "data": {"origins": "https://o:8935\n"},
    }


def test_a_network_policy_in_full() -> None:
    w = worker(LIVE_RUNNER)
    assert render_network_policies(w) == [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": w.metadata("w"),
            "spec": {
                "podSelector": {"matchLabels": w.selector_labels},
                "policyTypes": ["Ingress"],
                "ingress": [{"ports": [{"protocol": "TCP", "port": 8000}]}],
            },
        }
    ]


def test_the_operator_peer_needs_both_its_namespace_and_its_release() -> None:
    for namespace, instance in (("byoc-system", ""), ("", "prod")):
        policy = PodPolicy(operator_namespace=namespace, operator_instance=instance)
        assert operator_peer(worker({}, policy)) == []
    assert len(operator_peer(worker({}, PodPolicy(operator_namespace="byoc-system", operator_instance="prod")))) == 1


def test_shipped_containers_are_hardened_in_full() -> None:
    base = {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert hardened() == base
    assert hardened(read_only_root=True) == {**base, "readOnlyRootFilesystem": True}


def test_the_worker_service_in_full() -> None:
    w = worker({"container": {"image": "acme/w:1", "port": 9000}})
    assert render_service(w) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": w.metadata("w"),
        "spec": {
            "type": "ClusterIP",
            "selector": w.selector_labels,
            "ports": [{"name": "http", "port": 9000, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def test_the_disruption_budget_in_full() -> None:
    w = worker({"disruptionBudget": {"maxUnavailable": "25%"}})
    assert render_disruption_budget(w) == {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": w.metadata("w"),
        "spec": {
            "selector": {"matchLabels": w.selector_labels},
            "maxUnavailable": "25%",
            "unhealthyPodEvictionPolicy": "AlwaysAllow",  # a crash-looping pod must not block a node drain
        },
    }


def test_the_spread_constraints_in_full() -> None:
    w = worker({"scheduling": {"spread": {"acrossGpuProducts": True, "whenUnsatisfiable": "DoNotSchedule"}}})
    assert topology_spread(w) == [
        {
            "maxSkew": 1,
            "topologyKey": "nvidia.com/gpu.product",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": w.selector_labels},
            "matchLabelKeys": ["pod-template-hash"],
        }
    ]
