"""The chart without a cluster: helm lint, and the structure of `helm template` for the main value combinations."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from byoc_operator import api, crd
from byoc_operator.config import DEFAULT_EDGE_IMAGE, OperatorConfig
from byoc_operator.pod_policy import PodPolicy

from .helm import CHART, CRD_NAME, ROOT, Helm, find, one, render, render_error

COMBINATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "namespaced": {"watchNamespaces": ["team-a", "team-b"]},
    "cluster-wide": {"clusterWide": True},
    "ha": {"replicaCount": 3},
    "no-crds-no-rbac": {
        "crds": {"install": False},
        "rbac": {"create": False},
        "serviceAccount": {"create": False, "name": "mine"},
    },
    "monitors": {
        "metrics": {
            "podMonitor": {"enabled": True},
            "serviceMonitor": {"enabled": True},
            "workers": {"podMonitor": {"enabled": True}},
        }
    },
    "everything": {
        "watchNamespaces": ["a"],
        "replicaCount": 2,
        "peering": {"name": "byoc"},
        "metrics": {
            "podMonitor": {"enabled": True, "labels": {"release": "prom"}},
            "workers": {"podMonitor": {"enabled": True}},
        },
        "workerImagePullSecret": {"create": True, "registry": "ghcr.io", "username": "u", "password": "p"},
        "imagePullSecrets": ["regcred"],
        "extraEnv": [{"name": "BYOC_X", "value": "1"}],
        "operator": {"verbose": True},
        "security": {"allowRoot": True, "allowedCapabilities": ["SYS_PTRACE"], "defaultMemoryLimit": ""},
    },
}


@pytest.mark.parametrize("strict", [False, True], ids=["lint", "lint-strict"])
def test_helm_lint(helm: Helm, strict: bool, tmp_path) -> None:
    args = ["lint", str(CHART), *(["--strict"] if strict else [])]
    res = helm.run(*args)
    assert "0 chart(s) failed" in res.stdout
    for name, values in COMBINATIONS.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(values))
        res = helm.run(*args, "-f", str(path), check=False)
        assert res.returncode == 0, f"{name}: {res.stdout}{res.stderr}"


def rules(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) triples granted, for rules without resourceNames."""
    out = set()
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    out.add((group, resource, verb + ("@named" if rule.get("resourceNames") else "")))
    return out


# What the operator's code touches (handlers.py, reconcile.py, children.py, orchestrator.py, autoscale.py), verb
# by verb. The cluster tests prove it is enough (the operator runs with exactly this) and that the rules tested
# there are all needed.
WORKER_RULES = {
    ("byoc.livepeer.org", "byocworkers", "list"),
    ("byoc.livepeer.org", "byocworkers", "watch"),
    ("byoc.livepeer.org", "byocworkers", "patch"),
    ("byoc.livepeer.org", "byocworkers/status", "patch"),
    *{("apps", "deployments", v) for v in ("list", "watch", "create", "patch", "delete")},
    *{("", "services", v) for v in ("list", "watch", "create", "patch", "delete")},
    *{("", "configmaps", v) for v in ("list", "watch", "create", "patch", "delete")},
    *{("policy", "poddisruptionbudgets", v) for v in ("list", "watch", "create", "patch", "delete")},
    *{("networking.k8s.io", "networkpolicies", v) for v in ("list", "watch", "create", "patch", "delete")},
    ("", "pods", "list"),
    ("", "pods", "watch"),
    ("", "pods", "patch"),
    ("", "secrets", "get"),
    ("", "secrets", "list"),
    ("", "secrets", "watch"),
    ("", "secrets", "create"),
    ("", "secrets", "delete"),
    ("", "events", "create"),
}
KOPF_SCANNING = {("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")}
# BYOCOrchestrators (cluster-scoped) and the namespace labels their namespaceSelector matches.
ORCHESTRATOR_RULES = {
    ("byoc.livepeer.org", "byocorchestrators", "list"),
    ("byoc.livepeer.org", "byocorchestrators", "watch"),
    ("", "namespaces", "list"),
    ("", "namespaces", "watch"),
}


def test_cluster_wide_rbac_is_one_cluster_role(helm: Helm) -> None:
    docs = render(helm, {"clusterWide": True})
    role = one(docs, "ClusterRole")
    assert rules(role) == WORKER_RULES | KOPF_SCANNING | ORCHESTRATOR_RULES
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    sa = one(docs, "ServiceAccount")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "byoc-system"}
    ]
    assert not find(docs, "Role") and not find(docs, "RoleBinding")
    args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not [a for a in args if a.startswith("--namespace")]
    # Nothing beyond what is listed: no wildcards, no write access to anything else.
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]


def worker_roles(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in find(docs, "Role") if not r["metadata"]["name"].endswith("-orchestrator-secrets")]


def test_the_default_install_serves_the_release_namespace_only(helm: Helm) -> None:
    """H4: no ClusterRole with the workers' rules (Secrets above all) unless clusterWide asks for one."""
    docs = render(helm, namespace="byoc-prod")
    (role,) = worker_roles(docs)
    assert role["metadata"]["namespace"] == "byoc-prod" and rules(role) == WORKER_RULES
    (binding,) = [b for b in find(docs, "RoleBinding") if b["roleRef"]["name"] == role["metadata"]["name"]]
    assert binding["metadata"]["namespace"] == "byoc-prod"
    assert binding["subjects"][0]["namespace"] == "byoc-prod"
    # Cluster-wide, only reads of what is cluster-scoped: BYOCOrchestrators, namespaces and (for kopf) CRDs.
    assert set().union(*(rules(r) for r in find(docs, "ClusterRole"))) == KOPF_SCANNING | ORCHESTRATOR_RULES
    args = container(docs)["args"]
    assert [a for a in args if a.startswith("--namespace")] == ["--namespace=byoc-prod"]
    # Everything else that follows the served namespaces follows it too.
    ha = render(helm, {"replicaCount": 2}, namespace="byoc-prod")
    assert [p["metadata"]["namespace"] for p in find(ha, "KopfPeering")] == ["byoc-prod"]
    assert not find(ha, "ClusterKopfPeering")
    pulls = render(helm, {"workerImagePullSecret": {"create": True, "dockerConfigJson": "{}"}}, namespace="byoc-prod")
    assert [s["metadata"]["namespace"] for s in find(pulls, "Secret")] == ["byoc-prod"]
    monitors = render(helm, {"metrics": {"workers": {"podMonitor": {"enabled": True}}}}, namespace="byoc-prod")
    assert one(monitors, "PodMonitor")["spec"]["namespaceSelector"] == {"matchNames": ["byoc-prod"]}


def test_namespaced_rbac_is_a_role_per_namespace(helm: Helm) -> None:
    docs = render(helm, {"watchNamespaces": ["team-a", "team-b"]})
    roles = worker_roles(docs)
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert rules(role) == WORKER_RULES
        (binding,) = find(docs, "RoleBinding", namespace=role["metadata"]["namespace"])
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        }
        assert binding["subjects"][0]["namespace"] == "byoc-system"
    # kopf's discovery: read-only, cluster-scoped, nothing of the workers'.
    cluster_roles = {r["metadata"]["name"].rsplit("-", 1)[-1]: r for r in find(docs, "ClusterRole")}
    namespaces = {("", "namespaces", "list"), ("", "namespaces", "watch")}
    assert rules(cluster_roles["discovery"]) == KOPF_SCANNING | namespaces
    # BYOCOrchestrators: read-only, cluster-scoped; their Secrets read by name in the release namespace only.
    assert rules(cluster_roles["orchestrators"]) == ORCHESTRATOR_RULES
    (secrets,) = [r for r in find(docs, "Role") if r["metadata"]["name"].endswith("-orchestrator-secrets")]
    assert secrets["metadata"]["namespace"] == "byoc-system" and rules(secrets) == {("", "secrets", "get")}
    args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if a.startswith("--namespace")] == ["--namespace=team-a", "--namespace=team-b"]

    strict = render(helm, {"watchNamespaces": ["team-a"], "rbac": {"discovery": False}})
    left = [r["metadata"]["name"] for r in find(strict, "ClusterRole")]
    assert left == [cluster_roles["orchestrators"]["metadata"]["name"]]


def test_no_rbac_and_no_service_account_when_managed_elsewhere(helm: Helm) -> None:
    docs = render(helm, COMBINATIONS["no-crds-no-rbac"])
    for kind in (
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ServiceAccount",
        "CustomResourceDefinition",
    ):
        assert not find(docs, kind), kind
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "mine"


def test_crd_is_the_generated_one_kept_on_uninstall(helm: Helm) -> None:
    docs = render(helm)
    for name, generated in [(CRD_NAME, crd.definition()), (crd.ORCHESTRATOR_CRD_NAME, crd.orchestrator_definition())]:
        rendered = one(docs, "CustomResourceDefinition", name)
        assert rendered["spec"] == generated["spec"]
        assert rendered["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert generated["metadata"]["labels"].items() <= rendered["metadata"]["labels"].items()
    assert not find(render(helm, {"crds": {"install": False}}), "CustomResourceDefinition")
    # Never in crds/ (Helm would not upgrade it there) nor as a plain template (it could not be switched off).
    assert not (CHART / "crds" / crd.CRD_FILE).exists()
    assert not list((CHART / "templates").rglob(crd.CRD_FILE))


def test_chart_crd_copy_is_fresh() -> None:
    for name, text in crd.files().items():
        path = CHART / "files" / "crds" / name
        assert path.read_text() == text, (
            f"{path} is stale: run `python -m byoc_operator.crd crds charts/byoc-operator/files/crds`"
        )


def test_kopf_peering_crds_are_shipped(helm: Helm) -> None:
    docs = [d for f in sorted((CHART / "crds").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    by_name = {d["metadata"]["name"]: d for d in docs}
    assert set(by_name) == {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    assert by_name["clusterkopfpeerings.kopf.dev"]["spec"]["scope"] == "Cluster"
    assert by_name["kopfpeerings.kopf.dev"]["spec"]["scope"] == "Namespaced"
    for d in docs:  # kopf writes its keep-alives into the object itself (no status subresource)
        version = d["spec"]["versions"][0]
        assert version["name"] == "v1" and "subresources" not in version
        assert version["schema"]["openAPIV3Schema"]["properties"]["status"]["x-kubernetes-preserve-unknown-fields"]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def test_operator_pod_is_locked_down(helm: Helm) -> None:
    docs = render(helm)
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    c = container(docs)
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["privileged"] is False
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {"name": "health", "containerPort": 8080, "protocol": "TCP"} in c["ports"]
    assert "--liveness=http://0.0.0.0:8080/healthz" in c["args"]
    # One replica, no peering: never two operators at once, even during a rollout.
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "command" not in c and not [a for a in c["args"] if a.startswith("--peering")]
    assert not find(docs, "ClusterKopfPeering") and not find(docs, "PodDisruptionBudget")
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["BYOC_RUNTIME_IMAGE"] == "ghcr.io/livepeer-byoc/byoc-runtime:0.1.0"
    assert env["BYOC_EDGE_IMAGE"] == DEFAULT_EDGE_IMAGE  # routers and sidecars: the operator's own default
    assert env["BYOC_RESYNC_SECONDS"] == "600" and "BYOC_RECONCILE_CONCURRENCY" in env
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert c["image"] == f"ghcr.io/livepeer-byoc/byoc-operator:{app_version}"


def test_security_values_reach_the_operator_as_its_pod_policy(helm: Helm) -> None:
    def policy(values: dict[str, Any]) -> PodPolicy:
        (c,) = one(render(helm, values, release="prod"), "Deployment")["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in c["env"]}
        # Worker NetworkPolicies admit the operator by its namespace (the pod's own) and release.
        assert next(e for e in c["env"] if e["name"] == "BYOC_OPERATOR_NAMESPACE")["valueFrom"] == {
            "fieldRef": {"fieldPath": "metadata.namespace"}
        }
        env["BYOC_OPERATOR_NAMESPACE"] = "byoc-system"
        return OperatorConfig.from_env(env).policy

    # The chart's defaults are the operator's: nothing beyond them allowed.
    assert policy({}) == PodPolicy(operator_namespace="byoc-system", operator_instance="prod")
    security = {
        "allowPrivileged": True,
        "allowRoot": True,
        "allowedCapabilities": ["SYS_PTRACE", "NET_ADMIN"],
        "allowedPriorityClasses": ["system-node-critical"],
        "allowedRuntimeClasses": ["nvidia", "kata"],
        "defaultMemoryLimit": "",
        "defaultMemoryRequest": "2Gi",
    }
    assert policy({"security": security}) == PodPolicy(
        allow_privileged=True,
        allow_root=True,
        allowed_capabilities=frozenset({"SYS_PTRACE", "NET_ADMIN"}),
        allowed_priority_classes=frozenset({"system-node-critical"}),
        allowed_runtime_classes=frozenset({"nvidia", "kata"}),
        default_memory_limit="",
        default_memory_request="2Gi",
        operator_namespace="byoc-system",
        operator_instance="prod",
    )
    assert "/security/allowPrivileged" in render_error(helm, {"security": {"allowPrivileged": "yes"}})


def test_ha_runs_peered_replicas_with_distinct_priorities(helm: Helm) -> None:
    docs = render(helm, {"replicaCount": 3, "clusterWide": True}, release="prod")
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    c = container(docs)
    assert "--peering=prod-byoc-operator" in c["args"]
    # The command wraps the image's entrypoint and appends a random --priority per pod.
    assert c["command"][:2] == ["python", "-c"] and "--priority" in c["command"][2]
    assert "byoc-operator" in c["command"][2]
    peering = one(docs, "ClusterKopfPeering", "prod-byoc-operator")
    assert peering["apiVersion"] == "kopf.dev/v1"
    assert ("kopf.dev", "clusterkopfpeerings", "patch@named") in rules(one(docs, "ClusterRole"))
    named = [r for r in one(docs, "ClusterRole")["rules"] if r.get("resourceNames")]
    assert named == [
        {
            "apiGroups": ["kopf.dev"],
            "resources": ["clusterkopfpeerings"],
            "resourceNames": ["prod-byoc-operator"],
            "verbs": ["get", "patch"],
        }
    ]
    assert one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert (
        anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"]
        == "kubernetes.io/hostname"
    )
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"

    namespaced = render(helm, {"replicaCount": 2, "watchNamespaces": ["a", "b"], "peering": {"name": "byoc"}})
    assert sorted(p["metadata"]["namespace"] for p in find(namespaced, "KopfPeering", "byoc")) == ["a", "b"]
    assert not find(namespaced, "ClusterKopfPeering")
    for role in find(namespaced, "Role"):
        if not role["metadata"]["name"].endswith("-orchestrator-secrets"):
            assert ("kopf.dev", "kopfpeerings", "patch@named") in rules(role)


def test_priority_wrapper_appends_a_random_priority() -> None:
    """The chart's command, run with a stand-in for byoc-operator that prints its argv."""
    import os
    import subprocess
    import sys
    import tempfile

    docs_cmd = None
    with tempfile.TemporaryDirectory() as tmp:
        fake = os.path.join(tmp, "byoc-operator")
        with open(fake, "w") as f:
            f.write(f"#!{sys.executable}\nimport json, sys; print(json.dumps(sys.argv[1:]))\n")
        os.chmod(fake, 0o755)
        template = (CHART / "templates" / "deployment.yaml").read_text()
        docs_cmd = re.search(r"- '(import os, secrets, sys;.*)'", template)
        assert docs_cmd
        seen = set()
        for _ in range(3):
            out = subprocess.run(
                [sys.executable, "-c", docs_cmd.group(1), "--peering=x", "--namespace=a"],
                env={**os.environ, "PATH": f"{tmp}:{os.environ['PATH']}"},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            argv = json.loads(out)
            assert argv[:2] == ["--peering=x", "--namespace=a"] and argv[2] == "--priority"
            seen.add(int(argv[3]))
        assert len(seen) == 3


def test_metrics_service_and_monitors(helm: Helm) -> None:
    docs = render(helm)
    c = container(docs)
    assert "--metrics-port=8081" in c["args"]
    assert {"name": "metrics", "containerPort": 8081, "protocol": "TCP"} in c["ports"]
    service = one(docs, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert service["spec"]["selector"] == one(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    for kind in ("PodMonitor", "ServiceMonitor"):
        assert not find(docs, kind)  # off by default

    docs = render(helm, COMBINATIONS["monitors"])
    sm = one(docs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    operator_pm, workers_pm = sorted(find(docs, "PodMonitor"), key=lambda d: d["metadata"]["name"])
    assert operator_pm["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    assert workers_pm["metadata"]["name"].endswith("-workers")
    assert workers_pm["spec"]["namespaceSelector"] == {"matchNames": ["byoc-system"]}
    cluster_wide = render(helm, {**COMBINATIONS["monitors"], "clusterWide": True})
    wide_pm = one(cluster_wide, "PodMonitor", workers_pm["metadata"]["name"])
    assert wide_pm["spec"]["namespaceSelector"] == {"any": True}
    assert workers_pm["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/managed-by": "byoc-operator"}
    assert workers_pm["spec"]["selector"]["matchExpressions"][0]["values"] == ["worker", "router"]
    assert workers_pm["spec"]["podMetricsEndpoints"][0]["port"] == "http"
    namespaced = render(helm, {"watchNamespaces": ["a"], "metrics": {"workers": {"podMonitor": {"enabled": True}}}})
    assert one(namespaced, "PodMonitor")["spec"]["namespaceSelector"] == {"matchNames": ["a"]}

    off = render(helm, {"metrics": {"port": 0}})
    assert not find(off, "Service") and "--metrics-port=0" in container(off)["args"]
    assert not [p for p in container(off)["ports"] if p["name"] == "metrics"]


def test_operator_settings_and_pull_secrets(helm: Helm) -> None:
    docs = render(helm, COMBINATIONS["everything"])
    c = container(docs)
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["BYOC_X"] == "1" and "--verbose" in c["args"]
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    (secret,) = find(docs, "Secret")
    assert secret["metadata"]["namespace"] == "a" and secret["type"] == "kubernetes.io/dockerconfigjson"
    import base64

    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert config["auths"]["ghcr.io"]["auth"] == base64.b64encode(b"u:p").decode()
    docs = render(
        helm,
        {
            "runtimeImage": "registry.local:5000/byoc/runtime:2.0",
            "edgeImage": "registry.local:5000/byoc/edge:2.0",
            "image": {"digest": "sha256:" + "a" * 64},
            "operator": {"resyncSeconds": 30},
        },
    )
    c = container(docs)
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["BYOC_RUNTIME_IMAGE"] == "registry.local:5000/byoc/runtime:2.0" and env["BYOC_RESYNC_SECONDS"] == "30"
    assert env["BYOC_EDGE_IMAGE"] == "registry.local:5000/byoc/edge:2.0"
    # Namespaces bring no orchestrators of their own unless the administrator allows it.
    assert env["BYOC_ALLOW_NAMESPACE_ORCHESTRATORS"] == "false"
    operator_ns = next(e for e in c["env"] if e["name"] == "BYOC_OPERATOR_NAMESPACE")
    assert operator_ns["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    allowed = container(render(helm, {"orchestrators": {"allowNamespaceOrchestrators": True}}))
    assert {"name": "BYOC_ALLOW_NAMESPACE_ORCHESTRATORS", "value": "true"} in allowed["env"]
    assert c["image"] == "ghcr.io/livepeer-byoc/byoc-operator@sha256:" + "a" * 64


@pytest.mark.parametrize(
    "values,message",
    [
        ({"runtimeImage": "Not An Image"}, "at '/runtimeImage'"),
        ({"edgeImage": "Not An Image"}, "at '/edgeImage'"),
        ({"watchNamespaces": "team-a"}, "at '/watchNamespaces': got string, want array"),
        ({"watchNamespaces": ["Team_A"]}, "at '/watchNamespaces/0'"),
        ({"replicas": 2}, "additional properties 'replicas' not allowed"),
        ({"replicaCount": -1}, "at '/replicaCount'"),
        ({"image": {"pullPolicy": "Sometimes"}}, "value must be one of 'Always', 'IfNotPresent', 'Never'"),
        ({"operator": {"resyncSeconds": "often"}}, "at '/operator/resyncSeconds'"),
        ({"crds": {"install": "yes"}}, "at '/crds/install': got string, want boolean"),
        ({"metrics": {"podMonitor": {"enabled": True, "interval": "soon"}}}, "at '/metrics/podMonitor/interval'"),
        ({"metrics": {"port": 0, "serviceMonitor": {"enabled": True}}}, "metrics.port must not be 0"),
        (
            {"workerImagePullSecret": {"create": True, "registry": "ghcr.io"}},
            "workerImagePullSecret: set dockerConfigJson, or registry, username and password",
        ),
        (
            {"workerImagePullSecret": {"create": True, "dockerConfigJson": "{}"}, "clusterWide": True},
            "workerImagePullSecret.namespaces: name the namespaces of your BYOCWorkers",
        ),
        ({"clusterWide": "yes"}, "at '/clusterWide': got string, want boolean"),
        ({"clusterWide": True, "watchNamespaces": ["a"]}, "clusterWide: true serves every namespace"),
    ],
)
def test_bad_values_fail_with_a_clear_message(helm: Helm, values: dict[str, Any], message: str) -> None:
    assert message in render_error(helm, values)


def test_schema_image_rule_is_the_crds() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["properties"]["runtimeImage"]["pattern"] == api.IMAGE_PATTERN
    assert schema["properties"]["edgeImage"]["pattern"] == api.IMAGE_PATTERN


def test_notes_and_install_docs(helm: Helm) -> None:
    res = helm.run(
        "install", "rel", str(CHART), "-n", "byoc-system", "--dry-run=client", "--set", "watchNamespaces={team-a}"
    )
    assert "It serves BYOCWorkers in: team-a." in res.stdout and "kubectl apply -n team-a" in res.stdout
    default = helm.run("install", "rel", str(CHART), "-n", "byoc-system", "--dry-run=client").stdout
    assert "in its own namespace, byoc-system, only: create them there" in default
    assert "kubectl apply -n byoc-system" in default
    wide = helm.run(
        "install", "rel", str(CHART), "-n", "byoc-system", "--dry-run=client", "--set", "clusterWide=true"
    ).stdout
    assert "every namespace (clusterWide: true)" in wide and "read every Secret in the cluster" in wide
    readme = (ROOT / "README.md").read_text().split("## Install with Helm", 1)[1].split("\n## ", 1)[0]
    assert "docs/install.md" in readme and "helm install byoc charts/byoc-operator " in readme
    section = (ROOT / "docs" / "install.md").read_text()
    for needed in (
        "helm install",
        "helm upgrade",
        "helm uninstall",
        "watchNamespaces",
        "clusterWide",
        "replicaCount",
        "kubectl delete crd",
    ):
        assert needed in section, needed
    # Every helm install/upgrade in the section names this chart's path.
    for line in section.splitlines():
        if line.startswith(("helm install", "helm upgrade")):
            assert " charts/byoc-operator " in line, line


def test_the_admission_policy_binds_the_operators_user_and_follows_the_security_values(helm: Helm) -> None:
    docs = render(helm)
    policy = one(docs, "ValidatingAdmissionPolicy")
    binding = one(docs, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    sa = one(docs, "ServiceAccount")["metadata"]["name"]
    (match,) = policy["spec"]["matchConditions"]
    assert match["expression"] == f'request.userInfo.username == "system:serviceaccount:byoc-system:{sa}"'
    messages = [v.get("message", "") for v in policy["spec"]["validations"]]
    assert any("privileged" in m for m in messages)
    # An administrator who allows privileged workers does not have the policy refuse what the operator allows.
    allowed = one(render(helm, {"security": {"allowPrivileged": True}}), "ValidatingAdmissionPolicy")
    assert not any("privileged" in v.get("message", "") for v in allowed["spec"]["validations"])
    off = render(helm, {"admissionPolicy": {"enabled": False}})
    assert not [d for d in off if d["kind"].startswith("ValidatingAdmissionPolicy")]
