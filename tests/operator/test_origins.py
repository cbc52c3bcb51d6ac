"""The origins a worker's pods may open start URLs on: the orchestrators it is wired to, in a ConfigMap the bundled
runtime reads from a volume (security review C2; the runtime side is tests/runtime/test_origins.py)."""

from __future__ import annotations

from byoc_operator import registration
from byoc_operator.registration import Target
from byoc_operator.render import Worker, render_deployment
from byoc_operator.render.origins import render_origins_configmap, restricts_origins

IMAGE = "registry.local/byoc-runtime:test"


def worker(spec: dict) -> Worker:
    return Worker.from_body({"metadata": {"name": "w", "namespace": "ns", "uid": "u-1"}, "spec": spec}, IMAGE)


def test_each_orchestrators_origin_and_the_channel_origins_it_declares() -> None:
    targets = [
        Target("https://Orch-A.example:8935/base", "s", "secret"),
        Target("http://orch-b:7935", "s", "secret", channel_origins=("https://trickle.example:443",)),
        Target("https://orch-a.example:8935", "s", "secret"),  # the same origin twice
    ]
    assert registration.allowed_origins(targets) == [
        "http://orch-b:7935",
        "https://orch-a.example:8935",
        "https://trickle.example:443",
    ]
    assert registration.allowed_origins([]) == []


def test_the_origins_configmap_lists_one_origin_a_line() -> None:
    w = worker({"orchestrators": [{"url": "https://o:8935", "secretRef": {"name": "s"}}]})
    cm = render_origins_configmap(w, ["https://o:8935", "https://t:9000"])
    assert cm["metadata"]["name"] == "w-origins" and cm["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert cm["data"] == {"origins": "https://o:8935\nhttps://t:9000\n"}


def test_a_registered_bundled_runtime_reads_them_from_an_optional_volume() -> None:
    spec = {"orchestrators": [{"url": "https://o:8935", "secretRef": {"name": "s"}}]}
    pod = render_deployment(worker(spec))["spec"]["template"]["spec"]
    c = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["BYOC_ALLOWED_ORIGINS_FILE"] == "/etc/byoc/origins/origins"
    assert {"name": "allowed-origins", "mountPath": "/etc/byoc/origins", "readOnly": True} in c["volumeMounts"]
    assert {"name": "allowed-origins", "configMap": {"name": "w-origins", "optional": True}} in pod["volumes"]
    # The origins themselves are not in the pod template: a fleet change rolls no pod.
    assert "o:8935" not in str(c["env"])


def test_unregistered_workers_and_user_images_get_no_origin_list() -> None:
    plain = worker({})
    user = worker(
        {
            "container": {"image": "ghcr.io/acme/w:1"},
            "orchestrators": [{"url": "https://o:8935", "secretRef": {"name": "s"}}],
        }
    )
    for w in (plain, user):
        assert not restricts_origins(w)
        c = render_deployment(w)["spec"]["template"]["spec"]["containers"][0]
        assert "BYOC_ALLOWED_ORIGINS_FILE" not in {e["name"] for e in c["env"]}
