"""Rendering is pure: spec in, manifests out."""

from __future__ import annotations

import json

import pydantic
import pytest
from byoc_operator.render import Worker, render_deployment, render_service
from byoc_operator.render.deployment import GPU_PRODUCT_LABEL, node_refusal

IMAGE = "registry.local/byoc-runtime:test"


def worker(spec: dict, name: str = "w") -> Worker:
    return Worker.from_body(
        {"metadata": {"name": name, "namespace": "ns", "uid": "u-1", "generation": 3}, "spec": spec}, IMAGE
    )


def pod(dep: dict) -> dict:
    return dep["spec"]["template"]["spec"]


def test_minimal_spec_runs_the_bundled_runtime_on_one_gpu() -> None:
    dep = render_deployment(worker({}))
    c = pod(dep)["containers"][0]
    assert c["image"] == IMAGE
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["BYOC_PROCESSOR"] == "passthrough"
    assert env["BYOC_CAPACITY"] == "1"
    assert env["BYOC_CAPABILITY"] == "live-video-to-video"
    # No memory limit in the spec: the operator's default (a pod must not take its node into memory pressure).
    assert c["resources"] == {"limits": {"nvidia.com/gpu": 1, "memory": "16Gi"}, "requests": {"memory": "1Gi"}}
    assert "NVIDIA_VISIBLE_DEVICES" not in env  # the device plugin names the allocated GPU
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod(dep)["tolerations"]
    assert dep["spec"]["replicas"] == 1


def test_rolling_update_never_needs_a_spare_gpu_by_default() -> None:
    strategy = render_deployment(worker({}))["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    custom = render_deployment(worker({"rollout": {"maxSurge": 1, "maxUnavailable": 0}}))["spec"]["strategy"]
    assert custom["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_runtime_processor_and_params_reach_the_container() -> None:
    spec = {"runtime": {"processor": "grayscale", "params": {"strength": 0.5}}, "sessionsPerPod": 3}
    env = {e["name"]: e.get("value") for e in pod(render_deployment(worker(spec)))["containers"][0]["env"]}
    assert env["BYOC_PROCESSOR"] == "grayscale"
    assert json.loads(env["BYOC_PARAMS"]) == {"strength": 0.5}
    assert env["BYOC_CAPACITY"] == "3"


def test_user_image_keeps_its_command_env_and_port() -> None:
    spec = {
        "container": {
            "image": "ghcr.io/acme/worker:1.2",
            "command": ["python", "-m", "w"],
            "args": ["--x"],
            "env": [{"name": "A", "value": "1"}],
            "port": 9000,
        }
    }
    w = worker(spec)
    c = pod(render_deployment(w))["containers"][0]
    assert (c["image"], c["command"], c["args"]) == ("ghcr.io/acme/worker:1.2", ["python", "-m", "w"], ["--x"])
    assert {"name": "A", "value": "1"} in c["env"]
    assert not any(e["name"] == "BYOC_PROCESSOR" for e in c["env"])
    assert c["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    svc = render_service(w)
    assert svc["spec"]["ports"][0]["port"] == 9000
    assert w.endpoint == "http://w.ns.svc:9000"


def test_gpu_product_mig_and_scheduling() -> None:
    spec = {
        "gpu": {"product": "NVIDIA-A100-SXM4-80GB", "migProfile": "1g.10gb"},
        "scheduling": {
            "nodeSelector": {"pool": "gpu"},
            "runtimeClassName": "nvidia",
            "priorityClassName": "live-video",
            "tolerations": [{"key": "dedicated", "operator": "Exists"}],
        },
    }
    p = pod(render_deployment(worker(spec)))
    assert p["containers"][0]["resources"]["limits"] == {"nvidia.com/mig-1g.10gb": 1, "memory": "16Gi"}
    assert p["nodeSelector"] == {"pool": "gpu", GPU_PRODUCT_LABEL: "NVIDIA-A100-SXM4-80GB"}
    assert p["runtimeClassName"] == "nvidia" and p["priorityClassName"] == "live-video"
    assert [t["key"] for t in p["tolerations"]] == ["nvidia.com/gpu", "dedicated"]


def test_cpu_only_worker_requests_no_gpu_and_no_toleration() -> None:
    p = pod(render_deployment(worker({"gpu": {"count": 0}, "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}})))
    assert p["containers"][0]["resources"] == {"limits": {"cpu": "2", "memory": "1Gi"}}
    assert "tolerations" not in p


def test_slow_start_probe_allows_the_whole_model_loading_budget() -> None:
    c = pod(render_deployment(worker({"probes": {"startupTimeoutSeconds": 1200, "periodSeconds": 15}})))["containers"][
        0
    ]
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] >= 1200
    # Startup and readiness ask whether the pod can take work; liveness only whether it answers.
    assert c["startupProbe"]["httpGet"] == c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}


def test_a_user_image_is_ready_when_its_sidecar_says_its_health_status_is() -> None:
    # pytrickle's /health is 200 while LOADING and in ERROR: the sidecar's /ready reads the status in it.
    spec = {"container": {"image": "ghcr.io/acme/w:1", "port": 9000}, "probes": {"path": "/api/health"}}
    p = pod(render_deployment(worker(spec)))
    c = p["containers"][0]
    assert c["readinessProbe"]["httpGet"] == c["startupProbe"]["httpGet"] == {"path": "/ready", "port": 8090}
    assert c["livenessProbe"]["httpGet"] == {"path": "/api/health", "port": "http"}
    sidecar = next(s for s in p["containers"] if s["name"] != "worker")
    assert any(port["containerPort"] == 8090 for port in sidecar["ports"])


def test_model_cache_volume() -> None:
    # Read-only unless the spec says otherwise: the claim named may be another workload's.
    writable = pod(render_deployment(worker({"modelCache": {"claimName": "weights", "readOnly": False}})))
    assert writable["volumes"][0]["persistentVolumeClaim"]["readOnly"] is False
    p = pod(render_deployment(worker({"modelCache": {"claimName": "weights"}})))
    assert p["volumes"] == [
        {"name": "model-cache", "persistentVolumeClaim": {"claimName": "weights", "readOnly": True}}
    ]
    assert p["containers"][0]["volumeMounts"] == [{"name": "model-cache", "mountPath": "/models", "readOnly": True}]


def test_children_are_owned_by_the_worker_and_selected_by_its_label() -> None:
    w = worker({})
    for child in (render_deployment(w), render_service(w)):
        (owner,) = child["metadata"]["ownerReferences"]
        assert owner["uid"] == "u-1" and owner["controller"] is True and owner["kind"] == "BYOCWorker"
    dep = render_deployment(w)
    assert dep["spec"]["selector"]["matchLabels"] == {
        "byoc.livepeer.org/worker": "w",
        "app.kubernetes.io/component": "worker",
    }
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert all(labels[k] == v for k, v in dep["spec"]["selector"]["matchLabels"].items())
    assert render_service(w)["spec"]["selector"] == {
        "byoc.livepeer.org/worker": "w",
        "app.kubernetes.io/component": "worker",
    }


def test_rendering_is_deterministic() -> None:
    spec = {"runtime": {"params": {"b": 1, "a": 2}}}
    assert render_deployment(worker(spec)) == render_deployment(worker(spec))


def test_worker_pods_get_no_service_account_token() -> None:
    assert pod(render_deployment(worker({})))["automountServiceAccountToken"] is False


@pytest.mark.parametrize(
    "spec", [{"replicas": -1}, {"sessionsPerPod": 0}, {"unknownField": 1}, {"gpu": {"migProfile": "big"}}]
)
def test_invalid_specs_fail_to_parse(spec: dict) -> None:
    with pytest.raises(ValueError):
        worker(spec)


def test_pod_labels_and_annotations_cannot_break_the_selector() -> None:
    spec = {"podLabels": {"team": "a", "byoc.livepeer.org/worker": "other"}, "podAnnotations": {"x": "1"}}
    meta = render_deployment(worker(spec))["spec"]["template"]["metadata"]
    assert meta["labels"]["team"] == "a" and meta["labels"]["byoc.livepeer.org/worker"] == "w"
    assert meta["annotations"] == {"x": "1"}


def test_live_runner_dynamic_adds_a_registrar_sidecar_with_secret_files_and_drain() -> None:
    spec = {
        "registration": {"protocol": "live-runner"},
        "sessionsPerPod": 2,
        "drain": {"gracePeriodSeconds": 300},
        "orchestrators": [
            {"url": "https://o1:8935/", "secretRef": {"name": "o1", "key": "s"}, "tls": {"insecureSkipVerify": True}},
            {
                "url": "https://o2:8935",
                "secretRef": {"name": "o2"},
                "tls": {"caBundleSecretRef": {"name": "ca", "key": "ca.pem"}},
            },
        ],
    }
    p = pod(render_deployment(worker(spec)))
    worker_c, registrar = p["containers"]
    assert registrar["command"] == ["byoc-registrar"] and registrar["image"] == IMAGE
    args = registrar["args"]
    assert "--orchestrator=https://o1:8935" in args and "--orchestrator=https://o2:8935" in args
    assert "--capacity=2" in args and "--drain-seconds=300" in args
    # One TLS setting per orchestrator, right after it: o1's insecureSkipVerify is not o2's.
    tls = [a for a in args if a.startswith(("--orchestrator=", "--orchestrator-tls="))]
    assert tls == [
        "--orchestrator=https://o1:8935",
        "--orchestrator-tls=insecure",
        "--orchestrator=https://o2:8935",
        "--orchestrator-tls=/var/run/byoc/orchestrators/1-ca/ca.crt",
    ]
    assert "--app=live-video-to-video" in args and "--worker-url=http://$(POD_IP):8000" in args
    # secrets arrive as files, never as args or env values
    assert not any("secret" in str(e.get("value", "")) for e in registrar["env"])
    volumes = {v["name"]: v["secret"] for v in p["volumes"] if "secret" in v}
    assert volumes["orchestrator-0"] == {"secretName": "o1", "items": [{"key": "s", "path": "secret"}]}
    assert volumes["orchestrator-1-ca"]["secretName"] == "ca"
    assert worker_c["lifecycle"]["preStop"]["httpGet"] == {"path": "/drain", "port": 8090}
    assert p["terminationGracePeriodSeconds"] == 315


def test_the_registrar_gets_no_secret_to_send_over_http_unless_plaintext_is_allowed() -> None:
    # An object stored before the API server's https rule (HTTPS_FOR_SECRETS) is rendered by the same rule.
    spec = {
        "registration": {"protocol": "live-runner"},
        "orchestrators": [
            {"url": "http://plain:8935", "secretRef": {"name": "plain"}},
            {"url": "http://allowed:8935", "secretRef": {"name": "allowed"}, "tls": {"allowPlaintext": True}},
            {"url": "https://tls:8935", "secretRef": {"name": "tls"}},
        ],
    }
    p = pod(render_deployment(worker(spec)))
    args = p["containers"][1]["args"]
    assert [a for a in args if a.startswith(("--orchestrator=", "--secret-file="))] == [
        "--orchestrator=http://allowed:8935",
        "--secret-file=/var/run/byoc/orchestrators/1/secret",
        "--orchestrator=https://tls:8935",
        "--secret-file=/var/run/byoc/orchestrators/2/secret",
    ]
    secrets = {v["secret"]["secretName"] for v in p["volumes"] if "secret" in v}
    assert secrets == {"allowed", "tls"}
    mounts = {m["name"] for m in p["containers"][1]["volumeMounts"]}
    assert mounts == {"orchestrator-1", "orchestrator-2"}


def test_byoc_protocol_has_no_registrar_sidecar() -> None:
    spec = {"orchestrators": [{"url": "https://o1:8935", "secretRef": {"name": "o1"}}]}
    p = pod(render_deployment(worker(spec)))
    assert [c["name"] for c in p["containers"]] == ["worker"]


def test_an_environment_entry_no_linux_node_can_start_is_refused() -> None:
    # The API server takes it; the container runtime could not exec the process (MAX_ARG_STRLEN, 128 KiB).
    assert node_refusal(worker({"runtime": {"params": {"prompt": "x" * 1000}}})) is None
    big = node_refusal(worker({"runtime": {"params": {"prompt": "x" * 140_000}}}))
    assert big is not None and big.startswith("spec.runtime.params is 1400") and "131072" in big
    env = [{"name": "HUGE", "value": "y" * 131_066}]  # "HUGE=" + value + NUL is 131072: just fits
    assert node_refusal(worker({"container": {"image": "ghcr.io/a/b:1", "env": env}})) is None
    env = [{"name": "HUGE", "value": "y" * 131_067}]
    assert "environment variable HUGE is 131073 bytes" in (
        node_refusal(worker({"container": {"image": "ghcr.io/a/b:1", "env": env}})) or ""
    )


def test_routers_and_sidecars_run_the_edge_image_and_the_bundled_worker_the_runtime_image() -> None:
    from byoc_operator.render.router import render_router_deployment

    edge = "registry.local/byoc-edge:test"
    orchestrators = [{"url": "https://o:8935", "secretRef": {"name": "s"}}]

    def rendered(spec: dict) -> tuple[Worker, dict]:
        body = {"metadata": {"name": "w", "namespace": "ns", "uid": "u-1", "generation": 3}, "spec": spec}
        w = Worker.from_body(body, IMAGE, edge_image=edge)
        return w, {c["name"]: c["image"] for c in pod(render_deployment(w))["containers"]}

    routed, images = rendered({"orchestrators": orchestrators})
    assert images == {"worker": IMAGE}  # the bundled runtime, which drains itself (byoc-drain is in its image)
    (router,) = pod(render_router_deployment(routed))["containers"]
    assert (router["image"], router["command"]) == (edge, ["byoc-router"])
    _, images = rendered({"orchestrators": orchestrators, "registration": {"protocol": "live-runner"}})
    assert images == {"worker": IMAGE, "registrar": edge}
    _, images = rendered({"container": {"image": "user/app:1"}})
    assert images == {"worker": "user/app:1", "drain": edge}


def test_runtime_secret_refs_are_mounted_read_only_as_files_and_named_only_by_reference() -> None:
    refs = [
        {"name": "hub", "key": "token", "file": "hf-token"},
        {"name": "vendor", "key": "api-key", "file": "vendor.key"},
    ]
    dep = render_deployment(worker({"runtime": {"processor": "passthrough", "secretRefs": refs}}))
    spec = pod(dep)
    (volume,) = [v for v in spec["volumes"] if v["name"] == "byoc-secrets"]
    assert volume == {
        "name": "byoc-secrets",
        "projected": {
            "sources": [
                {"secret": {"name": "hub", "items": [{"key": "token", "path": "hf-token"}]}},
                {"secret": {"name": "vendor", "items": [{"key": "api-key", "path": "vendor.key"}]}},
            ]
        },
    }
    worker_container, *sidecars = spec["containers"]
    assert {"name": "byoc-secrets", "mountPath": "/var/run/byoc/secrets", "readOnly": True} in worker_container[
        "volumeMounts"
    ]
    env = {e["name"]: e.get("value") for e in worker_container["env"]}
    assert env["BYOC_SECRETS_DIR"] == "/var/run/byoc/secrets"
    # Only the worker container sees them; nothing in the pod takes a Secret's value into its environment.
    assert all("byoc-secrets" not in json.dumps(c) for c in sidecars)
    assert "secretKeyRef" not in json.dumps(dep)
    # Without secretRefs: no volume, no variable.
    plain = pod(render_deployment(worker({"runtime": {"processor": "passthrough"}})))
    assert "byoc-secrets" not in json.dumps(plain) and "BYOC_SECRETS_DIR" not in json.dumps(plain)


@pytest.mark.parametrize(
    ("refs", "why"),
    [
        ([{"name": "a", "key": "k", "file": "x"}, {"name": "b", "key": "k", "file": "x"}], "more than once"),
        ([{"name": "a", "key": "k", "file": "../etc/passwd"}], "pattern"),
        ([{"name": "a", "key": "k", "file": "..data"}], "pattern"),
        ([{"name": "a", "key": "k/1", "file": "x"}], "pattern"),
    ],
)
def test_secret_refs_need_one_plain_file_name_each(refs: list[dict], why: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=why):
        worker({"runtime": {"secretRefs": refs}})
