"""kwok Stage definitions (pure)."""

from __future__ import annotations

import yaml
from byoc_testenv import stages


def by_name():
    return {s["metadata"]["name"]: s for s in stages.default_stages()}


def keys(stage):
    return {e["key"]: e for e in stage["spec"]["selector"]["matchExpressions"]}


def test_stage_names_unique_and_serialisable():
    all_stages = stages.default_stages()
    names = [s["metadata"]["name"] for s in all_stages]
    assert len(names) == len(set(names))
    assert yaml.safe_load_all(yaml.safe_dump_all(all_stages))
    kinds = {s["spec"]["resourceRef"]["kind"] for s in all_stages}
    assert kinds == {"Node", "Pod"}  # kwokctl uses only these: both kinds must be present


def test_default_pod_lifecycle_skips_simulated_pods():
    ready = keys(by_name()["pod-ready"])
    sim = ready['.metadata.annotations["byoc-testenv/simulate"]']
    assert sim["operator"] == "DoesNotExist"


def test_each_simulation_has_its_stage():
    stages_ = by_name()
    for value in stages.SIMULATIONS:
        stage = stages_[f"pod-simulate-{value}"]
        sel = keys(stage)['.metadata.annotations["byoc-testenv/simulate"]']
        assert sel == {"key": '.metadata.annotations["byoc-testenv/simulate"]', "operator": "In", "values": [value]}
        # Only pods kwok has not handled yet, so the stage applies once.
        assert keys(stage)[".status.startTime"]["operator"] == "DoesNotExist"


def test_failure_templates_say_what_a_kubelet_says():
    assert "ImagePullBackOff" in stages.POD_IMAGE_PULL_ERROR and "phase: Pending" in stages.POD_IMAGE_PULL_ERROR
    assert "CrashLoopBackOff" in stages.POD_CRASH_LOOP and "exitCode: 1" in stages.POD_CRASH_LOOP
    assert "restartCount: 3" in stages.POD_CRASH_LOOP
    assert "ready: false" in stages.POD_NOT_READY and "phase: Running" in stages.POD_NOT_READY
    for template in (stages.POD_IMAGE_PULL_ERROR, stages.POD_CRASH_LOOP, stages.POD_NOT_READY):
        assert "ContainersNotReady" in template


def test_deleting_pods_are_removed_whatever_their_simulation():
    delete = by_name()["pod-delete"]
    assert delete["spec"]["next"] == {"delete": True}
    assert list(keys(delete)) == [".metadata.deletionTimestamp"]
