"""What every stage of one session shares: its settings, the worker's metrics, the stream's counters and its
events channel (where a stage reports an error the stream rides out)."""

from __future__ import annotations

from dataclasses import dataclass

from ..metrics import Metrics
from .events_out import EventsOut
from .settings import SessionSettings
from .stats import StreamStats


@dataclass(frozen=True, slots=True)
class StageContext:
    stream_id: str
    settings: SessionSettings
    metrics: Metrics
    stats: StreamStats
    events: EventsOut
