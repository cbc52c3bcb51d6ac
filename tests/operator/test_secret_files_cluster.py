"""runtime.secretRefs against a real kube-apiserver (security review M6): a credential reaches the worker container as
a read-only file of a projected Secret volume, and its value appears nowhere the operator writes: not in the
Deployment, its pods, the BYOCWorker's status, the Events or the operator's log."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from byoc_testenv.polling import wait_for
from lightkube import ApiError, Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Event, Pod

from tests.support.operator import OperatorProcess, get_worker, kubectl_apply, worker_manifest

pytestmark = pytest.mark.cluster

VALUE = "hf_s3cret-value-that-must-stay-in-its-secret"


def deployment(kube: Client, name: str, namespace: str) -> dict[str, Any] | None:
    try:
        return kube.get(Deployment, name, namespace=namespace).to_dict()
    except ApiError:
        return None


def test_secret_refs_are_mounted_as_files_and_their_values_are_written_nowhere(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess
) -> None:
    kubectl_apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "hub", "namespace": namespace},
            "data": {"token": base64.b64encode(VALUE.encode()).decode()},
        },
    )
    spec = {
        "gpu": {"count": 0},
        "runtime": {
            "processor": "passthrough",
            "params": {"prompt": "not a secret"},
            "secretRefs": [{"name": "hub", "key": "token", "file": "hf-token"}],
        },
    }
    kubectl_apply(cluster, worker_manifest("sec", namespace, spec))
    dep = wait_for(lambda: deployment(kube, "sec", namespace), 60, what="the Deployment")
    template = dep["spec"]["template"]["spec"]
    (volume,) = [v for v in template["volumes"] if v["name"] == "byoc-secrets"]
    assert volume["projected"]["sources"] == [
        {"secret": {"name": "hub", "items": [{"key": "token", "path": "hf-token"}]}}
    ]
    container = template["containers"][0]
    assert {"name": "byoc-secrets", "mountPath": "/var/run/byoc/secrets", "readOnly": True} in container["volumeMounts"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["BYOC_SECRETS_DIR"] == "/var/run/byoc/secrets"
    assert json.loads(env["BYOC_PARAMS"]) == {"prompt": "not a secret"}  # params are echoed: never secret

    # The Deployment controller makes the pod from it: the value is in none of them, nor in the status or Events.
    pods = wait_for(
        lambda: [p.to_dict() for p in kube.list(Pod, namespace=namespace, labels={"byoc.livepeer.org/worker": "sec"})],
        60,
        what="the worker pod",
    )
    wait_for(lambda: get_worker(kube, "sec", namespace).get("status", {}).get("conditions"), 60, what="a status")
    written = {
        "deployment": kube.get(Deployment, "sec", namespace=namespace).to_dict(),
        "pods": pods,
        "worker": get_worker(kube, "sec", namespace),
        "events": [e.to_dict() for e in kube.list(Event, namespace=namespace)],
    }
    for what, obj in written.items():
        text = json.dumps(obj, default=str)
        assert VALUE not in text and base64.b64encode(VALUE.encode()).decode() not in text, what
    assert VALUE not in operator.log_path.read_text(errors="replace")


def test_a_file_name_twice_or_with_a_path_is_refused_by_the_api_server(cluster: Any, namespace: str) -> None:
    for refs, message in (
        ([{"name": "a", "key": "k", "file": "x"}, {"name": "b", "key": "k", "file": "x"}], "Duplicate value"),
        ([{"name": "a", "key": "k", "file": "../x"}], "spec.runtime.secretRefs[0].file"),
    ):
        manifest = worker_manifest("bad", namespace, {"runtime": {"secretRefs": refs}})
        result = kubectl_apply(cluster, manifest, check=False)
        assert result.returncode != 0 and message in result.stderr, result.stderr
