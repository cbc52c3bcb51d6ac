"""Live Runner static mode and the BYOC worker token, driven by the operator on the real control plane against the
test orchestrator (its CLI port for /registerLiveRunners). kwok pods run no process, so the test answers each
pod's health check itself, on the pod's IP (127.64.x.y) and the worker's port, as the worker would."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from byoc_operator.render.registrar import REGISTRAR_PORT
from byoc_testenv.orchestrator.process import OrchestratorProcess, orchestrator_spec
from byoc_testenv.polling import free_port, wait_for
from lightkube import Client
from lightkube.resources.core_v1 import ConfigMap, Event, Pod

from tests.support.operator import BYOCWorker, OperatorProcess, condition, get_worker, kubectl_apply, worker_manifest

pytestmark = pytest.mark.cluster

SECRET = "orch-static-s3cret"
TOKEN = "worker-token-NEVER-SHOWN-41d9"


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ready" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class PodHealth:
    """What a user image's pod answers its static health check with: the drain sidecar's ``/ready`` (on
    ``REGISTRAR_PORT``) answering 200 on every pod IP seen, kept even after its pod is gone (as a later pod
    reusing the IP would). ``port`` is the worker's own port, where nothing listens here."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.servers: dict[str, ThreadingHTTPServer] = {}

    def serve(self, ips: list[str]) -> None:
        for ip in ips:
            if ip not in self.servers:
                server = ThreadingHTTPServer((ip, REGISTRAR_PORT), _Health)
                threading.Thread(target=server.serve_forever, daemon=True).start()
                self.servers[ip] = server

    def close(self) -> None:
        for server in self.servers.values():
            server.shutdown()
            server.server_close()


@pytest.fixture
def orch() -> Iterator[OrchestratorProcess]:
    with OrchestratorProcess.start(secret=SECRET, health_interval=1.0) as proc:
        yield proc


@pytest.fixture
def health() -> Iterator[PodHealth]:
    h = PodHealth(free_port())
    yield h
    h.close()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def discovered(orch: OrchestratorProcess) -> list[dict[str, Any]]:
    return get_json(f"{orch.url}/discovery")[0].get("runners", [])


def static_runners(orch: OrchestratorProcess) -> dict[str, dict[str, Any]]:
    """By label, as the orchestrator holds them."""
    runners = get_json(f"{orch.url}/_test/live-runners")["runners"].values()
    return {r["fields"]["label"]: r for r in runners if r["static"]}


def runners_json(kube: Client, namespace: str, name: str) -> list[dict[str, Any]]:
    cm = kube.get(ConfigMap, f"{name}-runners", namespace=namespace)
    return json.loads((cm.data or {})["runners.json"])["runners"]


def worker_pods(kube: Client, namespace: str, name: str) -> list[Pod]:
    pods = kube.list(Pod, namespace=namespace, labels={"byoc.livepeer.org/worker": name})
    return [p for p in pods if p.status and p.status.podIP and not p.metadata.deletionTimestamp]


def upserts(operator: OperatorProcess) -> float:
    return operator.metrics().get('byoc_operator_registration_calls_total{call="registerLiveRunners",result="200"}', 0)


def test_static_runners_follow_scaling_and_deletion(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess, orch: OrchestratorProcess, health: PodHealth
) -> None:
    app = f"static-{namespace[-6:]}"
    spec = {
        "capability": {"name": app},
        "container": {"image": "registry.local/worker:1", "port": health.port},
        "replicas": 2,
        "sessionsPerPod": 2,
        "gpu": {"count": 0},
        "registration": {"protocol": "live-runner", "liveRunnerMode": "static", "refreshSeconds": 3600},
        "orchestrators": [{"url": orch.url, "cliUrl": orch.cli_url}],  # no secretRef: upserts carry none
    }
    kubectl_apply(cluster, worker_manifest("st", namespace, spec))

    def ours() -> list[dict[str, Any]]:
        health.serve([p.status.podIP for p in worker_pods(kube, namespace, "st")])
        return [r for r in discovered(orch) if r["app"] == app]

    def follows(n: int) -> dict[str, Any] | None:
        entry = ((get_worker(kube, "st", namespace).get("status") or {}).get("orchestrators") or [{}])[0]
        listed = ours()
        ok = len(listed) == n and entry.get("runners") == n and entry.get("capacity") == 2 * n
        ok = ok and len(runners_json(kube, namespace, "st")) == n
        return entry if ok else None

    entry = wait_for(lambda: follows(2), 120, what="2 runners listed and reported")
    assert entry["registered"] and entry["url"] == orch.url and "lastError" not in entry
    obj = get_worker(kube, "st", namespace)
    assert condition(obj, "Registered")["reason"] == "AllRegistered"
    pods = {p.metadata.name: p.status.podIP for p in worker_pods(kube, namespace, "st")}
    cm = runners_json(kube, namespace, "st")
    # Slot labels, one per pod (taken as pods become ready); health checked at the sidecar's /ready on its IP.
    assert sorted(r["label"] for r in cm) == [f"st-0.{namespace}", f"st-1.{namespace}"]
    assert sorted(r["runner_url"] for r in cm) == sorted(f"http://{ip}:{health.port}" for ip in pods.values())
    assert all((r["app"], r["capacity"], r["routing"]) == (app, 2, "label") for r in cm)
    assert all(r["health_url"] == r["runner_url"].rsplit(":", 1)[0] + f":{REGISTRAR_PORT}/ready" for r in cm)
    listed = ours()
    assert {r["url"] for r in listed} == {f"{orch.url}/apps/{r['label']}/session" for r in cm}  # routable by label
    cmobj = kube.get(ConfigMap, "st-runners", namespace=namespace)
    assert cmobj.metadata.ownerReferences[0].kind == "BYOCWorker"  # garbage-collected with the worker

    # Idle: nothing changed, so no upsert (refreshSeconds is an hour here), however often the operator resyncs.
    before = upserts(operator)
    wait_for(lambda: follows(2), 30, what="still 2")
    time.sleep(6)  # three resyncs at least
    assert upserts(operator) == before

    cluster.kubectl("scale", "byocworker/st", "--replicas=3", "-n", namespace)
    wait_for(lambda: follows(3), 120, what="3 runners")
    cluster.kubectl("scale", "byocworker/st", "--replicas=1", "-n", namespace)
    wait_for(lambda: follows(1), 120, what="1 runner")
    # The orchestrator keeps the gone pods' entries (never removed upstream) but they are retired: unavailable
    # although something still answers 200 on their IPs.
    held = static_runners(orch)
    gone = {label: r for label, r in held.items() if r["fields"]["app"] == app and r["fields"]["status"] != "ready"}
    assert len(gone) == 2 and len(held) >= 3
    wait_for(lambda: follows(1), 30, what="still 1 after health polls")

    events = kube.list(Event, namespace=namespace, fields={"involvedObject.name": "st"})
    assert any(e.reason == "Registered" and "upserted" in (e.message or "") for e in events)

    kube.delete(BYOCWorker, "st", namespace=namespace)

    def gone_and_retired() -> bool:
        with contextlib.suppress(Exception):
            kube.get(BYOCWorker, "st", namespace=namespace)
            return False
        return not ours()

    wait_for(gone_and_retired, 120, what="worker gone (finalizer retired its runners) and none listed")


def test_orchestrator_removed_from_the_spec_has_its_runners_retired(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess, orch: OrchestratorProcess, health: PodHealth
) -> None:
    app = f"static-rm-{namespace[-6:]}"
    with OrchestratorProcess.start(secret=SECRET, health_interval=1.0) as other:
        fleet = [{"url": orch.url, "cliUrl": orch.cli_url}, {"url": other.url, "cliUrl": other.cli_url}]
        spec = {
            "capability": {"name": app},
            "container": {"image": "registry.local/worker:1", "port": health.port},
            "replicas": 2,
            "gpu": {"count": 0},
            "registration": {"protocol": "live-runner", "liveRunnerMode": "static", "refreshSeconds": 3600},
            "orchestrators": fleet,
        }
        kubectl_apply(cluster, worker_manifest("rm", namespace, spec))

        def listed(o: OrchestratorProcess) -> int:
            health.serve([p.status.podIP for p in worker_pods(kube, namespace, "rm")])
            return len([r for r in discovered(o) if r["app"] == app])

        wait_for(lambda: listed(orch) == 2 and listed(other) == 2, 120, what="2 runners on both orchestrators")

        kubectl_apply(cluster, worker_manifest("rm", namespace, {**spec, "orchestrators": fleet[:1]}))
        wait_for(lambda: listed(other) == 0, 60, what="runners retired on the removed orchestrator")
        entries = wait_for(
            lambda: (e := get_worker(kube, "rm", namespace)["status"]["orchestrators"]) and len(e) == 1 and e,
            30,
            what="one orchestrator in the status",
        )
        assert entries[0]["url"] == orch.url and entries[0]["runners"] == 2
        assert listed(orch) == 2  # the one still named keeps them
        retired = [r for r in static_runners(other).values() if r["fields"]["app"] == app]
        assert len(retired) == 2 and all(r["fields"]["status"] != "ready" for r in retired)


def test_orchestrator_without_cli_url_is_reported_truthfully(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess, orch: OrchestratorProcess
) -> None:
    spec = {
        "capability": {"name": "static-nocli"},
        "replicas": 1,
        "gpu": {"count": 0},
        "registration": {"protocol": "live-runner", "liveRunnerMode": "static"},
        "orchestrators": [{"url": orch.url}],
    }
    kubectl_apply(cluster, worker_manifest("nocli", namespace, spec))
    c = wait_for(
        lambda: (
            (c := condition(get_worker(kube, "nocli", namespace), "Registered")) and c["reason"] == "Registering" and c
        ),
        120,
        what="Registering with the ConfigMap note",
    )
    assert "nocli-runners" in c["message"] and "at start only" in c["message"]
    wait_for(lambda: len(runners_json(kube, namespace, "nocli")) == 1, 60, what="ConfigMap with the ready pod")
    (entry,) = get_worker(kube, "nocli", namespace)["status"]["orchestrators"]
    assert entry["registered"] is False and "lastError" not in entry


def test_worker_token_reaches_the_orchestrator_and_nowhere_else(
    cluster: Any, kube: Client, namespace: str, operator: OperatorProcess, orch: OrchestratorProcess
) -> None:
    cap = f"tok-{namespace[-6:]}"
    for name, data in (("orch", {"secret": SECRET}), ("tok", {"token": TOKEN})):
        kubectl_apply(
            cluster,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace},
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
            },
        )
    spec = {
        "capability": {"name": cap},
        "replicas": 1,
        "gpu": {"count": 0},
        "registration": {"refreshSeconds": 5, "tokenSecretRef": {"name": "tok", "key": "token"}},
        "orchestrators": [orchestrator_spec(orch.url, "orch")],
    }
    kubectl_apply(cluster, worker_manifest("tk", namespace, spec))
    registered = wait_for(
        lambda: get_json(f"{orch.url}/_test/capabilities")["capabilities"].get(cap), 120, what="registered"
    )
    assert registered["token"] == TOKEN
    # kwok pods run no router: registered, with nothing advertised free (tests/e2e covers real routers).
    wait_for(
        lambda: condition(get_worker(kube, "tk", namespace), "Registered").get("reason") == "RoutersUnreachable",
        60,
        what="Registered (RoutersUnreachable)",
    )
    obj = get_worker(kube, "tk", namespace)
    events = kube.list(Event, namespace=namespace)
    seen = json.dumps(obj) + json.dumps([e.message for e in events]) + operator.log_path.read_text(errors="replace")
    assert TOKEN not in seen
