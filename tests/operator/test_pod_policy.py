"""What a tenant's BYOCWorker may put in its pods: refused unless the administrator allows it (pod_policy.py),
and the hardening that stays whatever the spec sets."""

from __future__ import annotations

from typing import Any

import pytest
from byoc_operator import api
from byoc_operator.config import OperatorConfig
from byoc_operator.pod_policy import PodPolicy, refusal
from byoc_operator.render import Worker, render_deployment
from byoc_operator.render.router import render_router_deployment

USER = {"image": "ghcr.io/acme/w:1"}
BYOC = {"orchestrators": [{"url": "https://o:8935", "secretRef": {"name": "s"}}]}


def spec(body: dict[str, Any]) -> api.BYOCWorkerSpec:
    return api.BYOCWorkerSpec.model_validate(body)


def worker(body: dict[str, Any], policy: PodPolicy | None = None) -> Worker:
    meta = {"name": "w", "namespace": "ns", "uid": "u1", "generation": 1}
    return Worker.from_body({"metadata": meta, "spec": body}, "registry.local/byoc-runtime:1", policy)


def pod_spec(body: dict[str, Any], policy: PodPolicy | None = None) -> dict[str, Any]:
    return render_deployment(worker(body, policy))["spec"]["template"]["spec"]


REFUSED = [
    (
        {"container": {**USER, "securityContext": {"privileged": True}}},
        "spec.container.securityContext.privileged",
        "true",
        "security.allowPrivileged",
    ),
    (
        {"container": {**USER, "securityContext": {"allowPrivilegeEscalation": True}}},
        "spec.container.securityContext.allowPrivilegeEscalation",
        "true",
        "security.allowPrivileged",
    ),
    (
        {"podSecurityContext": {"seccompProfile": {"type": "Unconfined"}}},
        "spec.podSecurityContext.seccompProfile.type",
        "Unconfined",
        "security.allowPrivileged",
    ),
    (
        {"container": {**USER, "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}},
        "spec.container.securityContext.appArmorProfile.type",
        "Unconfined",
        "security.allowPrivileged",
    ),
    (
        {"container": {**USER, "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}},
        "spec.container.securityContext.capabilities.add",
        "'SYS_ADMIN'",
        "security.allowedCapabilities",
    ),
    ({"podSecurityContext": {"runAsUser": 0}}, "spec.podSecurityContext.runAsUser", "0 (root)", "security.allowRoot"),
    ({"podSecurityContext": {"runAsGroup": 0}}, "spec.podSecurityContext.runAsGroup", "0 (root)", "security.allowRoot"),
    (
        {"container": {**USER, "securityContext": {"runAsNonRoot": False}}},
        "spec.container.securityContext.runAsNonRoot",
        "false",
        "security.allowRoot",
    ),
    (
        {"scheduling": {"priorityClassName": "system-node-critical"}},
        "spec.scheduling.priorityClassName",
        "'system-node-critical'",
        "security.allowedPriorityClasses",
    ),
    (
        {"scheduling": {"priorityClassName": "system-cluster-critical"}},
        "spec.scheduling.priorityClassName",
        "'system-cluster-critical'",
        "security.allowedPriorityClasses",
    ),
    (
        {"scheduling": {"runtimeClassName": "runc"}},
        "spec.scheduling.runtimeClassName",
        "'runc'",
        "security.allowedRuntimeClasses",
    ),
]


@pytest.mark.parametrize(("body", "field", "value", "setting"), REFUSED, ids=[f for _, f, _, _ in REFUSED])
def test_what_could_leave_the_sandbox_is_refused_naming_the_field_and_the_setting(
    body: dict[str, Any], field: str, value: str, setting: str
) -> None:
    assert refusal(spec(body), PodPolicy()) == (
        f"{field} {value} is not allowed on this cluster: the operator's administrator allows it with the chart "
        f"value {setting}"
    )


def test_the_administrator_allows_each_one_explicitly() -> None:
    policy = OperatorConfig.from_env(
        {
            "BYOC_ALLOW_PRIVILEGED": "true",
            "BYOC_ALLOW_ROOT": "true",
            "BYOC_ALLOWED_CAPABILITIES": "sys_admin, NET_ADMIN",
            "BYOC_ALLOWED_PRIORITY_CLASSES": "system-node-critical,system-cluster-critical",
            "BYOC_ALLOWED_RUNTIME_CLASSES": "runc",
        }
    ).policy
    for body, _, _, _ in REFUSED:
        assert refusal(spec(body), policy) is None, body
    # An allow-list of priority classes is the whole list: others are refused.
    assert refusal(spec({"scheduling": {"priorityClassName": "batch"}}), policy) is not None
    adding = lambda cap: spec({"container": {**USER, "securityContext": {"capabilities": {"add": [cap]}}}})  # noqa: E731
    assert refusal(adding("CAP_NET_ADMIN"), policy) is None
    assert refusal(adding("BPF"), policy) is not None


def test_ordinary_specs_need_no_setting() -> None:
    ordinary = [
        {},
        {"container": {**USER, "securityContext": {"runAsUser": 1000, "runAsNonRoot": True, "privileged": False}}},
        {"podSecurityContext": {"fsGroup": 2000, "seccompProfile": {"type": "Localhost", "localhostProfile": "p"}}},
        {"scheduling": {"priorityClassName": "live-video"}},
        {"container": {**USER, "securityContext": {"capabilities": {"drop": ["NET_RAW"]}}}},
    ]
    for body in ordinary:
        assert refusal(spec(body), PodPolicy()) is None, body


@pytest.mark.parametrize(
    "body",
    [
        {"hostNetwork": True},
        {"podSecurityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}},
        {"podSecurityContext": {"seLinuxOptions": {"type": "spc_t"}}},
        {"container": {**USER, "securityContext": {"procMount": "Unmasked"}}},
        {"container": {**USER, "securityContext": {"windowsOptions": {"hostProcess": True}}}},
        {"container": {**USER, "env": [{"name": "A", "value": "1", "extra": 1}]}},
    ],
)
def test_fields_no_setting_allows_are_not_in_the_api(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        spec(body)


def test_the_defaults_stay_when_a_tenant_sets_other_fields() -> None:
    user = {**USER, "securityContext": {"readOnlyRootFilesystem": True}}
    p = pod_spec({"container": user, "podSecurityContext": {"fsGroup": 7}})
    assert p["securityContext"] == {"fsGroup": 7, "seccompProfile": {"type": "RuntimeDefault"}}
    assert p["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def test_shipped_containers_pin_their_non_root_user_whatever_the_pod_says() -> None:
    p = pod_spec({"podSecurityContext": {"runAsUser": 0}}, PodPolicy(allow_root=True))
    ctx = p["containers"][0]["securityContext"]
    assert ctx["runAsUser"] == 65532 and ctx["runAsNonRoot"] is True


def test_router_pods_get_the_pod_hardening_too() -> None:
    pod = render_router_deployment(worker(BYOC))["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert {"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"} in pod["containers"][0]["env"]


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container["env"]}


def test_pods_without_gpus_see_none() -> None:
    for body in ({"gpu": {"count": 0}}, {"gpu": {"count": 0}, "container": USER}):
        containers = pod_spec(body)["containers"]
        assert all(env(c)["NVIDIA_VISIBLE_DEVICES"] == "void" for c in containers), body
    # With a GPU the device plugin names it; the sidecars still see none.
    gpu_pod = pod_spec({"gpu": {"count": 1}, "container": USER})["containers"]
    assert "NVIDIA_VISIBLE_DEVICES" not in env(gpu_pod[0]) and env(gpu_pod[1])["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert "NVIDIA_VISIBLE_DEVICES" not in env(pod_spec({"gpu": {"migProfile": "1g.10gb"}})["containers"][0])


def test_a_memory_limit_is_always_set() -> None:
    def resources(body: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
        policy = OperatorConfig.from_env(env).policy if env is not None else None
        return pod_spec(body, policy)["containers"][0]["resources"]

    # The default limit, reserving the default request (not the whole limit, as Kubernetes would).
    assert resources({}) == {"limits": {"nvidia.com/gpu": 1, "memory": "16Gi"}, "requests": {"memory": "1Gi"}}
    # Never below the spec's request; the spec's limit as given.
    assert resources({"resources": {"requests": {"memory": "40Gi"}}})["limits"]["memory"] == "40Gi"
    assert resources({"resources": {"limits": {"memory": "2Gi"}}}) == {"limits": {"memory": "2Gi", "nvidia.com/gpu": 1}}
    env = {"BYOC_DEFAULT_MEMORY_LIMIT": "8Gi", "BYOC_DEFAULT_MEMORY_REQUEST": ""}
    assert resources({}, env) == {"limits": {"nvidia.com/gpu": 1, "memory": "8Gi"}}
    assert "memory" not in resources({}, {"BYOC_DEFAULT_MEMORY_LIMIT": ""})["limits"]
