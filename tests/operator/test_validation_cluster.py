"""Invalid BYOCWorkers are refused by the API server itself, with messages a user understands."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.support.operator import kubectl_apply, worker_manifest

pytestmark = pytest.mark.cluster

CASES = [
    ({"replicas": -1}, "spec.replicas"),
    ({"sessionsPerPod": 0}, "spec.sessionsPerPod"),
    ({"gpu": {"count": 2, "migProfile": "1g.10gb"}}, "gpu.count must be 1 when migProfile is set"),
    ({"gpu": {"migProfile": "huge"}}, "spec.gpu.migProfile"),
    ({"runtime": {"processor": "does-not-exist"}}, "runtime.processor must be a built-in processor"),
    ({"container": {"image": "Not A/Valid Image"}}, "container.image is not a valid image reference"),
    ({"runtime": {}, "container": {"image": "ghcr.io/a/b:1"}}, "set either spec.runtime"),
    ({"resources": {"limits": {"nvidia.com/gpu": 2}}}, "request GPUs with spec.gpu"),
    ({"rollout": {"maxSurge": 0, "maxUnavailable": 0}}, "cannot both be 0"),
    ({"capability": {"name": "Bad_Name"}}, "spec.capability.name"),
    ({"pricing": {"pricePerUnit": -5}}, "spec.pricing.pricePerUnit"),
    # A fiat BYOC price makes an orchestrator without a price feed panic in its register handler.
    ({"pricing": {"pricePerUnit": 5, "currency": "USD"}}, 'spec.pricing.currency: Unsupported value: "USD"'),
    ({"pricing": {"liveRunner": {"price": "0"}}}, "pricing.liveRunner.price must be a positive decimal"),
    ({"pricing": {"liveRunner": {"price": "-3"}}}, "pricing.liveRunner.price must be a positive decimal"),
    ({"pricing": {"liveRunner": {"price": "1", "currency": "eur"}}}, "spec.pricing.liveRunner.currency"),
    ({"pricing": {"liveRunner": {"price": "1", "unit": "minute"}}}, "spec.pricing.liveRunner.unit"),
    ({"registration": {"expose": {"type": "NodePort"}}}, "registration.expose.nodeAddress is required"),
    ({"orchestrators": [{"url": "ftp://x", "secretRef": {"name": "s"}}]}, "spec.orchestrators[0].url"),
    # A '?' or '#' would turn the path the operator joins into a query or fragment (another URL on that host).
    (
        {"orchestrators": [{"url": "http://o:7935/transferTokens?to=0xA#", "secretRef": {"name": "s"}}]},
        'spec.orchestrators[0].url: Invalid value: "http://o:7935/transferTokens?to=0xA#": must be an http(s) URL '
        "without user info, query or fragment",
    ),
    (
        {"orchestrators": [{"url": "http://o:8935", "cliUrl": "http://o:7935/signMessage#"}]},
        'spec.orchestrators[0].cliUrl: Invalid value: "http://o:7935/signMessage#": must be an http(s) URL',
    ),
    (
        {"orchestrators": [{"url": "http://admin:pw@o:8935", "secretRef": {"name": "s"}}]},
        "must be an http(s) URL without user info",
    ),
    ({"registration": {"advertiseUrl": "https://r.example/?x=1"}}, "spec.registration.advertiseUrl: Invalid"),
    ({"gpu": {"cuont": 1}}, 'unknown field "spec.gpu.cuont"'),
    ({"autoscaling": {"minReplicas": 4, "maxReplicas": 2}}, "minReplicas must not be greater than"),
    ({"autoscaling": {"minReplicas": 1}}, "spec.autoscaling.maxReplicas: Required value"),
    ({"autoscaling": {"maxReplicas": 2, "targetBusyPercent": 0}}, "spec.autoscaling.targetBusyPercent"),
    ({"disruptionBudget": {"minAvailable": 1, "maxUnavailable": 1}}, "set exactly one of minAvailable"),
    ({"disruptionBudget": {}}, "set exactly one of minAvailable"),
    ({"scheduling": {"spread": {"whenUnsatisfiable": "Never"}}}, "spec.scheduling.spread.whenUnsatisfiable"),
    ({"orchestrators": [{"url": "http://o:8935"}]}, "needs a secretRef"),
    ({"imagePullSecrets": ["regcred", "regcred"]}, 'spec.imagePullSecrets[1]: Duplicate value: "regcred"'),
    (
        {"orchestrators": [{"url": "http://o:8935"}], "registration": {"protocol": "live-runner"}},
        "needs a secretRef",
    ),
    # Pod fields no administrator setting allows are not in the API (security contexts are typed, not free-form).
    ({"hostNetwork": True}, 'unknown field "spec.hostNetwork"'),
    (
        {"container": {"image": "ghcr.io/a/b:1", "securityContext": {"procMount": "Unmasked"}}},
        'unknown field "spec.container.securityContext.procMount"',
    ),
    ({"podSecurityContext": {"seLinuxOptions": {"type": "spc_t"}}}, "spec.podSecurityContext.seLinuxOptions"),
    (
        {"podSecurityContext": {"seccompProfile": {"type": "Loose"}}},
        'spec.podSecurityContext.seccompProfile.type: Unsupported value: "Loose"',
    ),
    (
        {"podSecurityContext": {"seccompProfile": {"type": "Localhost"}}},
        "seccompProfile.localhostProfile is required with type Localhost",
    ),
    (
        {"gpu": {"count": 0}, "container": {"image": "ghcr.io/a/b:1", "env": [{"name": "NVIDIA_VISIBLE_DEVICES"}]}},
        "may not set NVIDIA_* variables unless the pods request GPUs",
    ),
    # M7: an orchestrator secret only over https, unless the entry opts out in so many words.
    (
        {"orchestrators": [{"url": "http://o:8935", "secretRef": {"name": "s"}}]},
        "spec.orchestrators[0]: Invalid value: url must be https:// when secretRef is set: the "
        "orchestrator secret would travel in plaintext",
    ),
    (
        {"orchestrators": [{"url": "http://o:8935", "secretRef": {"name": "s"}, "tls": {"insecureSkipVerify": True}}]},
        "set tls.allowPlaintext: true to send it over http anyway",
    ),
    ({"podLabels": {"app.kubernetes.io/name": "byoc-operator"}}, "spec.podLabels may not use keys under"),
    ({"podAnnotations": {"sidecar.istio.io/inject": "false"}}, "spec.podAnnotations may not use keys under"),
]


@pytest.mark.parametrize(("spec", "message"), CASES, ids=[m for _, m in CASES])
def test_invalid_spec_is_rejected_with_a_clear_message(
    cluster: Any, namespace: str, crd_installed: None, spec: dict[str, Any], message: str
) -> None:
    result = kubectl_apply(cluster, worker_manifest("invalid", namespace, spec), check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_valid_specs_are_accepted_and_defaulted(cluster: Any, namespace: str, crd_installed: None) -> None:
    spec = {
        "runtime": {"processor": "my_pkg.effects:Cartoon", "params": {"k": [1, 2]}},
        "gpu": {"migProfile": "1g.10gb"},
        "rollout": {"maxSurge": "25%", "maxUnavailable": 0},
        "container": None,
    }
    spec.pop("container")
    kubectl_apply(cluster, worker_manifest("valid", namespace, spec))
    # With GPUs, a user image may name the NVIDIA variables it needs.
    user = {"image": "ghcr.io/a/b:1", "env": [{"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "compute,video"}]}
    kubectl_apply(cluster, worker_manifest("gpu-env", namespace, {"container": user}))
    import json

    # An http orchestrator without a secret (Live Runner static), or with one where the entry allows plaintext.
    static = {"registration": {"protocol": "live-runner", "liveRunnerMode": "static"}}
    kubectl_apply(
        cluster, worker_manifest("static", namespace, {**static, "orchestrators": [{"url": "http://o:8935"}]})
    )
    plain = {"url": "http://o:8935", "secretRef": {"name": "s"}, "tls": {"allowPlaintext": True}}
    kubectl_apply(cluster, worker_manifest("plaintext", namespace, {"orchestrators": [plain]}))

    obj = json.loads(cluster.kubectl("get", "byocworker", "valid", "-n", namespace, "-o", "json").stdout)
    assert obj["spec"]["capability"]["name"] == "live-video-to-video"
    assert obj["spec"]["probes"]["startupTimeoutSeconds"] == 1800
    assert obj["spec"]["runtime"]["params"] == {"k": [1, 2]}


def test_a_byoc_orchestrator_sends_its_secret_over_https_only(cluster: Any, crd_installed: None) -> None:
    def apply(spec: dict[str, Any]) -> Any:
        manifest = {
            "apiVersion": "byoc.livepeer.org/v1alpha1",
            "kind": "BYOCOrchestrator",
            "metadata": {"name": "plaintext-probe"},
            "spec": {"namespaceSelector": {}, "secretRef": {"name": "s"}, **spec},
        }
        return cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(manifest), check=False)

    refused = apply({"url": "http://o:8935"})
    assert refused.returncode != 0
    assert "spec: Invalid value: url must be https:// when secretRef is set" in refused.stderr
    assert apply({"url": "https://o:8935"}).returncode == 0
    allowed = apply({"url": "http://o:8935", "tls": {"allowPlaintext": True}})
    assert allowed.returncode == 0, allowed.stderr
