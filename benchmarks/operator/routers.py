"""The routers' part in BYOC mode, for a fleet of kwok pods: answer each router pod's ``GET /health``.

kwok pods run no containers, and the operator registers the free slots the routers report
(``byoc_operator/slots.py``), so with no router answering it registers 0. This stands in for the router replicas:
it serves ``/health`` on each running router pod's own IP and port (kwok pod IPs are loopback addresses) with what
the real router (``byoc_edge/router/fleet.py``) reports with no stream running: one free slot per session of
every Ready worker pod. The Ready pods are the worker Deployment's ``readyReplicas``, read every ``poll_s``: the
router learns pods from the headless Service, which lists the Ready ones, so it lags the Deployment by its own DNS
poll; this stand-in does not, and the benchmark's "after the pods" time is the operator's share alone.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from byoc_operator.render.worker import LABEL_COMPONENT, LABEL_WORKER, ROUTER_PORT
from byoc_testenv.cluster import Cluster


class StandInRouters:
    """Start with :meth:`start`, stop with :meth:`stop`; ``ready`` is the Ready worker pods last read."""

    def __init__(self, cluster: Cluster, namespace: str, worker: str, sessions_per_pod: int, poll_s: float = 0.5):
        self.cluster = cluster
        self.namespace = namespace
        self.worker = worker
        self.sessions_per_pod = sessions_per_pod
        self.poll_s = poll_s
        self.ready = 0
        self.health_checks = 0
        self._servers: dict[str, ThreadingHTTPServer] = {}
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="stand-in routers", daemon=True)

    def start(self) -> None:
        self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        self._poller.join(timeout=10)
        for server in self._servers.values():
            server.shutdown()
            server.server_close()

    def health(self) -> dict[str, Any]:
        pods = self.ready
        return {"status": "OK" if pods else "IDLE", "pods": pods, "available": pods * self.sessions_per_pod,
                "active_streams": 0}  # fmt: skip

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.ready = self._ready_replicas()
            for ip in self._router_ips():
                if ip not in self._servers:
                    self._serve(ip)
            self._stop.wait(self.poll_s)

    def _ready_replicas(self) -> int:
        got = self.cluster.kubectl("get", "deployment", self.worker, "-n", self.namespace, "-o", "json", check=False)
        if got.returncode != 0:
            return 0
        return int((json.loads(got.stdout).get("status") or {}).get("readyReplicas") or 0)

    def _router_ips(self) -> list[str]:
        selector = f"{LABEL_WORKER}={self.worker},{LABEL_COMPONENT}=router"  # render/router.py router_selector
        got = self.cluster.kubectl("get", "pods", "-n", self.namespace, "-l", selector, "-o", "json", check=False)
        if got.returncode != 0:
            return []
        items = json.loads(got.stdout).get("items") or []
        return [p["status"]["podIP"] for p in items if (p.get("status") or {}).get("podIP")]

    def _serve(self, ip: str) -> None:
        routers = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/health":
                    self.send_error(404)
                    return
                routers.health_checks += 1
                body = json.dumps(routers.health()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer((ip, ROUTER_PORT), Handler)
        server.daemon_threads = True
        self._servers[ip] = server
        threading.Thread(target=server.serve_forever, name=f"router {ip}", daemon=True).start()
