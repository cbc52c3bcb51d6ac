"""The worker Service: one stable in-cluster address for the worker pods."""

from __future__ import annotations

from typing import Any

from byoc_operator.render.worker import Worker


def render_service(worker: Worker) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": worker.metadata(worker.service_name),
        "spec": {
            "type": "ClusterIP",
            "selector": worker.selector_labels,
            "ports": [{"name": "http", "port": worker.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }
