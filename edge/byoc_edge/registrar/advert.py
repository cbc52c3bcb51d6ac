"""Worker state -> what a heartbeat advertises (pure functions).

Status: "ready" only when the worker's ``/health`` says IDLE or OK; otherwise a lowercase word that hides the
runner (go-livepeer routes only "" and "ready"). Capacity: the configured number, else the worker's, else 1;
while draining it shrinks to the sessions the orchestrator already holds, so the orchestrator reserves no new
one while the runner stays "ready" (a non-ready status would break the running sessions). Draining with no
session held, the status is "draining": upstream reads capacity 0 as 1, so "ready" would still sell one.
"""

from __future__ import annotations

from ..liverunner import (
    STATUS_DRAINING,
    STATUS_ERROR,
    STATUS_LOADING,
    STATUS_READY,
    STATUS_UNREACHABLE,
    RunnerAdvert,
    RunnerGPU,
)
from .config import RegistrarConfig
from .local_worker import WorkerState

_STATUS = {"IDLE": STATUS_READY, "OK": STATUS_READY, "LOADING": STATUS_LOADING, "ERROR": STATUS_ERROR}


def runner_status(state: WorkerState, draining: bool = False, held_sessions: int = 0) -> str:
    if draining and held_sessions == 0:
        return STATUS_DRAINING  # nothing runs that a non-ready status could break
    return _STATUS.get(state.health, STATUS_UNREACHABLE)


def advertised_capacity(configured: int, state: WorkerState, draining: bool, held_sessions: int) -> int:
    if draining:
        return max(1, held_sessions)  # 0 would mean 1 upstream; 1 with none held is the least there is
    return configured or state.capacity or 1


def build_advert(
    config: RegistrarConfig,
    state: WorkerState,
    *,
    runner_id: str,
    draining: bool,
    held_sessions: int,
    gpu: RunnerGPU | None,
    worker_version: str,
) -> RunnerAdvert:
    return RunnerAdvert(
        app=config.app,
        runner_url=config.runner_url,
        runner_id=runner_id,
        status=runner_status(state, draining, held_sessions),
        capacity=advertised_capacity(config.capacity, state, draining, held_sessions),
        mode=config.mode,
        label=config.label,
        version=config.runner_version or worker_version,
        metadata=config.metadata,
        gpu=gpu,
        price_info=config.price_info,
    )
