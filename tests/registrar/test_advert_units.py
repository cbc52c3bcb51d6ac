"""registrar/advert.py: every configured field reaches the advert, and the capacity and status rules exactly.

The configurations skip validation (`model_construct`): what is under test is the advert, not the flags."""

from __future__ import annotations

import pytest
from byoc_edge.liverunner import RunnerAdvert, RunnerGPU
from byoc_edge.registrar.advert import advertised_capacity, build_advert, runner_status
from byoc_edge.registrar.config import RegistrarConfig
from byoc_edge.registrar.local_worker import WorkerState


@pytest.mark.parametrize(
    ("health", "status"),
    [
        ("IDLE", "ready"),
        ("OK", "ready"),
        ("LOADING", "loading"),
        ("ERROR", "error"),
        ("UNREACHABLE", "unreachable"),
        ("odd", "unreachable"),
    ],
)
def test_status_from_health(health: str, status: str) -> None:
    assert runner_status(WorkerState(health)) == status
    assert runner_status(WorkerState(health), draining=True, held_sessions=1) == status


def test_draining_with_nothing_held_says_draining() -> None:
    assert runner_status(WorkerState("OK"), draining=True) == "draining"
    assert runner_status(WorkerState("OK"), draining=False, held_sessions=0) == "ready"


def test_capacity_configured_then_the_workers_then_one() -> None:
    assert advertised_capacity(3, WorkerState("OK", capacity=5), False, 0) == 3
    assert advertised_capacity(0, WorkerState("OK", capacity=5), False, 2) == 5
    assert advertised_capacity(0, WorkerState("OK"), False, 2) == 1


def test_capacity_while_draining_is_what_is_held_and_at_least_one() -> None:
    assert advertised_capacity(3, WorkerState("OK", capacity=5), True, 2) == 2
    assert advertised_capacity(3, WorkerState("OK", capacity=5), True, 0) == 1


def test_build_advert_carries_every_configured_field() -> None:
    config = RegistrarConfig.model_construct(
        app="live-video-to-video/x",
        runner_url="http://10.0.0.9:8000",
        capacity=3,
        mode="single-shot",
        label="l",
        runner_version="2.0",
        metadata="meta",
        price_info={"pricePerUnit": 7},
    )
    gpu = RunnerGPU("0", "H100", 80000)
    advert = build_advert(
        config,
        WorkerState("IDLE", capacity=5),
        runner_id="r1",
        draining=False,
        held_sessions=0,
        gpu=gpu,
        worker_version="1.0",
    )
    assert advert == RunnerAdvert(
        app="live-video-to-video/x",
        runner_url="http://10.0.0.9:8000",
        runner_id="r1",
        status="ready",
        capacity=3,
        mode="single-shot",
        label="l",
        version="2.0",
        metadata="meta",
        gpu=gpu,
        price_info={"pricePerUnit": 7},
    )


def test_build_advert_falls_back_to_the_worker_version_and_reflects_draining() -> None:
    config = RegistrarConfig.model_construct(app="a", runner_url="http://u")
    advert = build_advert(
        config,
        WorkerState("OK", capacity=4),
        runner_id="r",
        draining=True,
        held_sessions=2,
        gpu=None,
        worker_version="1.0",
    )
    assert advert == RunnerAdvert(
        app="a", runner_url="http://u", runner_id="r", status="ready", capacity=2, version="1.0"
    )


def test_build_advert_status_and_capacity_follow_the_worker() -> None:
    config = RegistrarConfig.model_construct(app="a", runner_url="http://u")
    loading = build_advert(
        config,
        WorkerState("LOADING", capacity=5),
        runner_id="r",
        draining=False,
        held_sessions=0,
        gpu=None,
        worker_version="1.0",
    )
    assert (loading.status, loading.capacity) == ("loading", 5)
    drained = build_advert(
        config,
        WorkerState("OK", capacity=5),
        runner_id="r",
        draining=True,
        held_sessions=0,
        gpu=None,
        worker_version="1.0",
    )
    assert (drained.status, drained.capacity) == ("draining", 1)
