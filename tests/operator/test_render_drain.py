"""Every worker pod drains: which preStop hook each kind of worker gets, and the sidecar that serves it."""

from __future__ import annotations

import pytest
from byoc_edge.registrar.config import load_config
from byoc_operator.render import render_deployment

from .test_render import pod, worker

ORCH = [{"url": "https://o1:8935", "secretRef": {"name": "o1"}}]
USER = {"image": "ghcr.io/acme/worker:1", "port": 9000}


def env_of(container: dict) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in container["env"]}


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"orchestrators": ORCH},
        {"orchestrators": ORCH, "registration": {"protocol": "live-runner", "liveRunnerMode": "static"}},
    ],
    ids=["plain", "byoc", "live-runner-static"],
)
def test_bundled_runtime_drains_itself(spec: dict) -> None:
    p = pod(render_deployment(worker({**spec, "drain": {"gracePeriodSeconds": 42}})))
    assert [c["name"] for c in p["containers"]] == ["worker"]
    c = p["containers"][0]
    # The runtime's own /drain?wait=true, asked from inside the pod (the only caller it drains for), holds SIGTERM
    # back until its streams ended or the grace is over.
    assert c["lifecycle"] == {"preStop": {"exec": {"command": ["byoc-drain"]}}}
    assert env_of(c)["BYOC_DRAIN_SECONDS"] == "42"
    assert p["terminationGracePeriodSeconds"] == 42 + 15


@pytest.mark.parametrize("spec", [{}, {"orchestrators": ORCH}], ids=["plain", "byoc"])
def test_user_image_drains_through_a_drain_only_sidecar(spec: dict) -> None:
    p = pod(render_deployment(worker({**spec, "container": USER, "drain": {"gracePeriodSeconds": 30}})))
    c, sidecar = p["containers"]
    assert c["lifecycle"] == {"preStop": {"httpGet": {"path": "/drain", "port": 8090}}}
    assert "BYOC_DRAIN_SECONDS" not in env_of(c)  # a user image knows nothing of it
    assert sidecar["name"] == "drain" and sidecar["command"] == ["byoc-registrar"]
    assert sidecar["args"] == [
        "--drain-only",
        "--worker-url=http://$(POD_IP):9000",
        "--drain-seconds=30",
        "--port=8090",
    ]
    assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in sidecar["env"]
    # No orchestrator secret in the sidecar; the worker container alone gets the (generated) token when routed.
    assert not sidecar["volumeMounts"]
    assert [v["name"] for v in p.get("volumes", [])] == (["byoc-token"] if spec else [])
    assert sidecar["ports"] == [{"name": "registrar", "containerPort": 8090, "protocol": "TCP"}]
    assert p["terminationGracePeriodSeconds"] == 30 + 15


def test_drain_sidecar_args_are_a_valid_registrar_configuration() -> None:
    sidecar = pod(render_deployment(worker({"container": USER})))["containers"][1]
    args = [a.replace("$(POD_IP)", "10.0.0.7") for a in sidecar["args"]]
    config = load_config(args, {"POD_IP": "10.0.0.7"})
    assert config.drain_only and not config.orchestrators
    assert config.worker_url == "http://10.0.0.7:9000" and config.drain_seconds == 600


@pytest.mark.parametrize("container", [None, USER], ids=["bundled", "user-image"])
def test_live_runner_dynamic_drains_through_its_registrar(container: dict | None) -> None:
    spec = {"orchestrators": ORCH, "registration": {"protocol": "live-runner"}}
    if container:
        spec["container"] = container
    p = pod(render_deployment(worker(spec)))
    c, registrar = p["containers"]
    assert registrar["name"] == "registrar" and "--drain-only" not in registrar["args"]
    assert c["lifecycle"] == {"preStop": {"httpGet": {"path": "/drain", "port": 8090}}}
    port = (container or {}).get("port", 8000)
    assert f"--worker-url=http://$(POD_IP):{port}" in registrar["args"]


def test_registrar_carries_the_live_runner_price() -> None:
    # On-chain orchestrators refuse every heartbeat without price_info (go-livepeer normalizeHeartbeat).
    spec = {"orchestrators": ORCH, "registration": {"protocol": "live-runner"}}
    unpriced = pod(render_deployment(worker(spec)))["containers"][1]
    assert not [a for a in unpriced["args"] if a.startswith("--price-info")]
    priced = pod(render_deployment(worker({**spec, "pricing": {"liveRunner": {"price": "0.25", "unit": "720p"}}})))
    args = [a.replace("$(POD_IP)", "10.0.0.7") for a in priced["containers"][1]["args"]]
    config = load_config(args, {"POD_IP": "10.0.0.7"})
    assert config.price_info == {"price": "0.25", "currency": "usd", "unit": "720p"}


def test_registrar_config_refuses_orchestrators_in_drain_only_mode() -> None:
    with pytest.raises(ValueError, match="drain-only registers nowhere"):
        load_config(["--drain-only", "--orchestrator", "http://o:1", "--app", "a", "--runner-url", "http://p:1"], {})
    with pytest.raises(ValueError, match="no orchestrator"):
        load_config(["--app", "a", "--runner-url", "http://p:1"], {})
