"""kwok stages for pods the launcher runs: Running with their IP at once, but not Ready.

kwok's default ``pod-ready`` stage marks every scheduled pod Ready at once. For pods whose image the launcher
runs, this stage wins instead (kwok picks the matching stage with a positive weight over weightless ones): the
pod gets its IP and phase Running, and the launcher sets Ready when the process answers its readiness probe,
as a kubelet would. Stages are fixed when a cluster starts, so pass these to ``Cluster.start(extra_stages=)``;
on a cluster started without them kwok reports Ready early and the launcher corrects it to the probe's answer
once the process runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import stages

STAGE_NAME = "pod-launch"


def launcher_stages(images: Iterable[str]) -> list[dict[str, Any]]:
    images = sorted(set(images))
    if not images:
        return []
    ready = '.status.conditions.[] | select( .type == "Ready" ) | .status'
    return [{
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": STAGE_NAME},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {"matchExpressions": [
                {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                # A simulated failure (stages.SIMULATE_ANNOTATION) keeps its own stage.
                {"key": f'.metadata.annotations["{stages.SIMULATE_ANNOTATION}"]', "operator": "DoesNotExist"},
                {"key": ".status.phase", "operator": "In", "values": ["Pending"]},
                {"key": ready, "operator": "NotIn", "values": ["True"]},
                {"key": ".spec.containers.[].image", "operator": "In", "values": images},
            ]},
            "weight": 1,
            "next": {"statusTemplate": stages.POD_NOT_READY},
        },
    }]
