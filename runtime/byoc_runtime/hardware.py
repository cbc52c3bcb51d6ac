"""GPU facts for ``/hardware/info`` and ``/hardware/stats`` (pytrickle ``utils/hardware.py`` shapes).

Read through torch, best effort: on a machine without CUDA both are empty maps.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

log = logging.getLogger(__name__)


def _devices() -> list[int]:
    try:
        return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    except Exception:  # a broken driver must not break the endpoint
        log.debug("cannot query CUDA devices", exc_info=True)
        return []


def _base(index: int) -> dict[str, Any]:
    props = torch.cuda.get_device_properties(index)
    free, total = torch.cuda.mem_get_info(index)
    return {"id": str(getattr(props, "uuid", index)), "name": props.name, "memory_total": total, "memory_free": free}


def gpu_compute_info() -> dict[int, dict[str, Any]]:
    info: dict[int, dict[str, Any]] = {}
    for index in _devices():
        try:
            props = torch.cuda.get_device_properties(index)
            info[index] = {**_base(index), "major": props.major, "minor": props.minor}
        except Exception:
            log.debug("cannot read GPU %d", index, exc_info=True)
    return info


def gpu_utilization_stats() -> dict[int, dict[str, Any]]:
    stats: dict[int, dict[str, Any]] = {}
    for index in _devices():
        try:
            try:
                compute = int(torch.cuda.utilization(index))
            except Exception:  # needs NVML; report 0 rather than fail
                compute = 0
            base = _base(index)
            used = 100 * (base["memory_total"] - base["memory_free"]) // max(1, base["memory_total"])
            stats[index] = {**base, "utilization_compute": compute, "utilization_memory": int(used)}
        except Exception:
            log.debug("cannot read GPU %d", index, exc_info=True)
    return stats


def cuda_available() -> bool:
    return bool(_devices())
