"""Registration load with Live Runner: a fleet of pods registered with 3 orchestrators, in both modes.

- dynamic: each worker pod's registrar sidecar registers the pod with every orchestrator and heartbeats at the
  interval they announce (go-livepeer: 5 s); the operator only reads each orchestrator's public /discovery into
  status.orchestrators[].runners. kwok pods run no containers, so `sidecars.SidecarProcess` shards stand in for
  the kubelets that would run the sidecars (the real registrar code, one asyncio task per pod; sidecars.py says
  what differs).
- static: the operator upserts one runner per Ready pod to each orchestrator (POST /registerLiveRunners) and
  retires gone ones; the orchestrators poll every runner's /health every 5 s, which the same shards answer on
  each pod's own (loopback) IP.
The operator runs with its production resync period and the worker with the default refreshSeconds.

For each scale change (0 -> R -> R/2 -> R), seconds from `kubectl scale` until
- pods: the Deployment reports exactly the target, all Ready (the floor: Kubernetes bringing pods up or down);
- discovery: every orchestrator's /discovery lists exactly the target runners with their capacity;
- status: the BYOCWorker's status.orchestrators[] says the same of every orchestrator;
and, per pod on the stand-in's clock: seen Ready -> every orchestrator accepted a "ready" heartbeat; seen deleted
-> drained and unregistered everywhere (dynamic only). Then, at R pods, the request rate the orchestrators absorb
or make (heartbeats in; health checks out) and its CPU cost over a steady window.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
from byoc_operator import api
from byoc_testenv.cluster import Cluster
from byoc_testenv.orchestrator.process import OrchestratorProcess, orchestrator_spec
from lightkube import Client, KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Pod

from benchmarks.operator.operator_process import Operator
from benchmarks.operator.percentiles import percentiles
from benchmarks.operator.sidecars import SidecarProcess

NAME = "fleet"  # the BYOCWorker, and its Deployment
MODES = ("dynamic", "static")
SECRET = "bench-orchestrator-secret"
ORCHESTRATORS = 3
SESSIONS_PER_POD = 1
INTERVAL_S = 5.0  # heartbeat and static health-check period: the test orchestrators' default, go-livepeer's
STEADY_S = 30.0
POLL_S = 0.5
TIMEOUT_S = 1800.0

BYOCWorker = create_namespaced_resource(api.GROUP, api.VERSION, api.KIND, api.PLURAL)


def namespace_of(mode: str) -> str:
    return f"reg-live-runner-{mode}"


def discovery_runners(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/discovery", timeout=30) as resp:
        listed = json.loads(resp.read())
    return [runner for orchestrator in listed for runner in orchestrator.get("runners") or []]


def pod_of(runner: dict[str, Any], namespace: str) -> str:
    """The pod a runner stands for, from its route: the runner id, which the registrar sets to the pod name
    (dynamic), or the label `{pod}.{namespace}` (static)."""
    route = str(runner["url"]).split("/apps/", 1)[1].split("/", 1)[0]
    return route.removesuffix(f".{namespace}")


def advertises(runners: list[dict[str, Any]], target: int) -> bool:
    return len(runners) == target and sum(r.get("capacity", 0) for r in runners) == target * SESSIONS_PER_POD


def status_agrees(status: dict[str, Any], target: int) -> bool:
    entries = status.get("orchestrators") or []
    return len(entries) == ORCHESTRATORS and all(
        e.get("runners", 0) == target and e.get("capacity", 0) == target * SESSIONS_PER_POD for e in entries
    )


def pods_settled(deployment: Deployment, target: int) -> bool:
    status = deployment.status
    return (
        deployment.spec.replicas == target
        and status is not None
        and (status.replicas or 0) == target
        and (status.readyReplicas or 0) == target
    )


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def moved_since(pods: dict[str, dict[str, Any]], since: float) -> tuple[list[dict[str, Any]], str, str]:
    """The pods that became Ready since `since`, else those deleted since then, with the names of the stand-in's
    timestamps that start and end each one's (un)registration."""
    up = [p for p in pods.values() if p["ready_at"] is not None and p["ready_at"] >= since]
    if up:
        return up, "ready_at", "advertised_at"
    return (
        [p for p in pods.values() if p["deleted_at"] is not None and p["deleted_at"] >= since],
        "deleted_at",
        ("unregistered_at"),
    )


def per_pod(moved: list[dict[str, Any]], start: str, end: str) -> dict[str, Any]:
    """Each pod's own registration (or unregistration) delay, as its registrar saw it."""
    delays = [p[end] - p[start] for p in moved if p[end] is not None]
    return {"pods": len(moved), "pending": len(moved) - len(delays), **(percentiles(delays) if delays else {})}


class Fleet:
    """One BYOCWorker's pods, the orchestrators they register with, and the sidecar stand-ins."""

    def __init__(
        self,
        mode: str,
        cluster: Cluster,
        orchs: list[OrchestratorProcess],
        sidecars: list[SidecarProcess],
        op: Operator,
    ) -> None:
        self.mode = mode
        self.namespace = namespace_of(mode)
        self.cluster = cluster
        self.orchs = orchs
        self.sidecars = sidecars
        self.op = op
        self.kube = Client(config=KubeConfig.from_file(str(cluster.kubeconfig)), field_manager="byoc-benchmark")

    def apply(self) -> None:
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "orch"}, "stringData": {"secret": SECRET}}
        if self.mode == "dynamic":
            orchestrators = [orchestrator_spec(o.url, "orch") for o in self.orchs]
        else:
            orchestrators = [{"url": o.url, "cliUrl": o.cli_url} for o in self.orchs]
        worker = {
            "apiVersion": f"{api.GROUP}/{api.VERSION}",
            "kind": api.KIND,
            "metadata": {"name": NAME},
            "spec": {
                "replicas": 0,
                "sessionsPerPod": SESSIONS_PER_POD,
                "gpu": {"count": 1},
                "registration": {"protocol": "live-runner", "liveRunnerMode": self.mode},
                "orchestrators": orchestrators,
            },
        }
        for obj in (secret, worker):
            self.cluster.kubectl("apply", "-n", self.namespace, "-f", "-", input=json.dumps(obj))

    def _check(self, what: str, target: int) -> bool:
        try:
            if what == "pods":
                return pods_settled(self.kube.get(Deployment, NAME, namespace=self.namespace), target)
            if what == "discovery":
                return all(advertises(discovery_runners(o.url), target) for o in self.orchs)
            return status_agrees(self.kube.get(BYOCWorker, NAME, namespace=self.namespace).status or {}, target)
        except (OSError, ValueError, ApiError):  # not there yet, or a poll that failed under load
            return False

    def follow(self, previous: int, target: int) -> dict[str, Any]:
        print(f"== live runner {self.mode}: {previous} -> {target} pods", flush=True)
        t0 = time.monotonic()
        self.cluster.kubectl("scale", "-n", self.namespace, f"byocworker/{NAME}", f"--replicas={target}")
        seen: dict[str, float] = {}
        while len(seen) < 3:
            if time.monotonic() - t0 > TIMEOUT_S:
                raise SystemExit(f"live runner {self.mode} did not follow {previous} -> {target}: {seen}")
            for what in ("pods", "discovery", "status"):
                if what not in seen and self._check(what, target):
                    seen[what] = time.monotonic()
            time.sleep(POLL_S)
        moved, start, end = moved_since(self.pod_stats(), t0)
        last_event = max((p[start] for p in moved), default=t0)
        result = {
            "change": f"{previous} -> {target}",
            "pods_s": round(seen["pods"] - t0, 2),
            "discovery_s": round(seen["discovery"] - t0, 2),
            "status_s": round(seen["status"] - t0, 2),
            "discovery_after_last_pod_s": round(seen["discovery"] - last_event, 2),
            "status_after_discovery_s": round(seen["status"] - seen["discovery"], 2),
            "exact": self.lists_exactly_the_pods(),
        }
        if self.mode == "dynamic":
            result["per_pod_s"] = per_pod(moved, start, end)
        print(json.dumps(result), flush=True)
        return result

    def lists_exactly_the_pods(self) -> bool:
        """Every orchestrator routes to exactly the worker's live pods (not only as many of them)."""
        pods = {
            p.metadata.name
            for p in self.kube.list(Pod, namespace=self.namespace, labels={"byoc.livepeer.org/worker": NAME})
            if p.metadata.deletionTimestamp is None
        }
        return all({pod_of(r, self.namespace) for r in discovery_runners(o.url)} == pods for o in self.orchs)

    def pod_stats(self) -> dict[str, dict[str, Any]]:
        pods: dict[str, dict[str, Any]] = {}
        for sidecar in self.sidecars:
            pods.update(sidecar.stats()["pods"])
        return pods

    def requests(self) -> Counter[tuple[str, str]]:
        """(orchestrator, "ok" | "failed") -> heartbeats the registrars sent (dynamic), or ("*", "ok") -> health
        checks the pods answered, from all orchestrators (static)."""
        counts: Counter[tuple[str, str]] = Counter()
        for sidecar in self.sidecars:
            stats = sidecar.stats()
            for b in stats["heartbeats"]:
                counts[(b["orchestrator"], b["result"])] += b["count"]
            counts[("*", "ok")] += stats["pod_ip_health_checks"]
        return counts

    def steady(self, replicas: int) -> dict[str, Any]:
        """Requests per orchestrator at `replicas` pods (heartbeats in, or health checks out), and their cost."""
        print(f"== live runner {self.mode}: steady load at {replicas} pods for {STEADY_S:g}s", flush=True)
        ps = {o.url: psutil.Process(o.proc.pid) for o in self.orchs}
        counts0, t0 = self.requests(), time.monotonic()
        orch0 = {url: cpu_seconds(p) for url, p in ps.items()}
        side0, op0 = sum(s.cpu_s() for s in self.sidecars), self.op.cpu_s()
        time.sleep(STEADY_S)
        counts1, dt = self.requests(), time.monotonic() - t0
        done = counts1 - counts0
        per_orch = [
            {
                "url": url,
                "requests_per_s": round(
                    (done[(url, "ok")] if self.mode == "dynamic" else done[("*", "ok")] / len(ps)) / dt, 1
                ),
                "failed": done[(url, "failed")],
                "cpu_pct": round(100 * (cpu_seconds(p) - orch0[url]) / dt, 1),
            }
            for url, p in ps.items()
        ]
        return {
            "pods": replicas,
            "requests": "heartbeats received" if self.mode == "dynamic" else "health checks made (average)",
            "window_s": round(dt, 1),
            "nominal_per_orchestrator_per_s": round(replicas / INTERVAL_S, 1),
            "orchestrators": per_orch,
            "sidecar_stand_ins_cpu_pct": round(100 * (sum(s.cpu_s() for s in self.sidecars) - side0) / dt, 1),
            "operator_cpu_pct": round(100 * (self.op.cpu_s() - op0) / dt, 1),
        }

    def removals(self) -> dict[str, int]:
        """Why the orchestrators dropped runners over the run: 'unregister' (drained) or 'heartbeat timeout'."""
        reasons: Counter[str] = Counter()
        for o in self.orchs:
            with urllib.request.urlopen(f"{o.url}/_test/live-runners", timeout=60) as resp:
                reasons.update(r["reason"] for r in json.loads(resp.read())["removed"])
        return dict(reasons)


def measure_live_runner(cluster: Cluster, mode: str, replicas: int, workdir: Path, shards: int = 2) -> dict[str, Any]:
    print(f"== registration: Live Runner {mode}, 1 worker scaled to {replicas} pods, 3 orchestrators", flush=True)
    namespace = namespace_of(mode)
    cluster.kubectl("create", "namespace", namespace)
    orchs: list[OrchestratorProcess] = []
    sidecars: list[SidecarProcess] = []
    op = None
    try:
        orchs = [OrchestratorProcess.start(secret=SECRET) for _ in range(ORCHESTRATORS)]
        sidecars = [
            SidecarProcess.start(
                cluster.kubeconfig, namespace, i, shards, workdir / f"sidecars-{mode}-{i}.log", mode == "static"
            )
            for i in range(shards)
        ]
        op = Operator(cluster, workdir / f"operator-live-runner-{mode}.log")  # production resync period
        fleet = Fleet(mode, cluster, orchs, sidecars, op)
        fleet.apply()
        changes, previous = [], 0
        for target in (replicas, replicas // 2, replicas):
            changes.append(fleet.follow(previous, target))
            previous = target
        steady = fleet.steady(replicas)
        counts = fleet.requests()
        result = {
            "mode": mode,
            "replicas": replicas,
            "orchestrators": ORCHESTRATORS,
            "sidecar_shards": shards,
            "changes": changes,
            "steady": steady,
            "heartbeats_failed": sum(n for (_, outcome), n in counts.items() if outcome == "failed"),
            "stand_in_errors": sorted({p["error"] for p in fleet.pod_stats().values() if p["error"]}),
            "removed_by_orchestrators": fleet.removals(),
            "operator_rss_mb": round(op.rss_mb(), 1),
        }
    finally:
        if op is not None:
            op.stop()
        for sidecar in sidecars:
            sidecar.stop()
        for orch in orchs:
            orch.stop()
    cluster.kubectl("delete", "namespace", namespace, "--wait=false")
    return result
