"""One benchmark result: an implementation, a mode, a size and a session count, and what was measured."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from byoc_testenv.devstream.latency import percentile

IMPLEMENTATIONS = ("ours", "ours-before", "pytrickle", "floor", "ours-cartoon")
DEFAULT_IMPLEMENTATIONS = ("ours", "pytrickle", "floor", "ours-cartoon")  # ours-before needs --baseline
PASSTHROUGH = ("ours", "ours-before", "pytrickle", "floor")  # the implementations compared with each other
LABELS = {
    "ours": "ours (byoc-runtime)",
    "ours-before": "ours before (--baseline)",
    "pytrickle": "PyTrickle 0.1.6",
    "floor": "bare PyAV floor",
    "ours-cartoon": "ours, `cartoon` processor",
}
# A session's stages, each on its own thread, and the runtime's stage timings each is made of: a pipeline of
# them cannot run faster than its slowest one.
THREAD_STAGES = {"decode": ("decode",), "processor": ("convert", "process"), "encode": ("encode",)}


@dataclass
class Measurement:
    impl: str  # one of IMPLEMENTATIONS
    mode: str  # throughput | latency
    size: str  # e.g. 512x512
    sessions: int
    seconds: float = 0.0  # length of the measured window
    frames_in: int = 0  # video frames published (all sessions)
    frames_out: int = 0  # video frames that came out (all sessions; throughput: inside the window)
    fps: float = 0.0  # frames_out / seconds, all sessions together
    fps_per_session: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0  # CPU time of the worker processes (floor: this process) in the window
    # Latency mode, over frames past the warm-up: from the input segment's start (the end-to-end figure)
    # and from the moment the frame itself was complete on the input (the latency the worker adds).
    seg_p50_ms: float | None = None
    seg_p95_ms: float | None = None
    added_p50_ms: float | None = None
    added_p95_ms: float | None = None
    first_output_s: float | None = None  # first input byte -> first output frame (worst session)
    frames_matched: int = 0
    stages_ms: dict[str, float] = field(default_factory=dict)  # ours: mean ms per frame in each pipeline stage
    dropped: dict[str, int] = field(default_factory=dict)  # ours: video frames it dropped, by its reason
    written_off: int = 0  # throughput: frames the closed loop stopped waiting for (never came out)
    load_avg: float | None = None  # 1-minute load average of the machine when the run ended
    error: str | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.mode, self.size, self.sessions)

    @property
    def cpu_ms_per_frame(self) -> float | None:
        return 1000 * self.cpu_seconds / self.frames_out if self.frames_out else None

    def thread_stages_ms(self) -> dict[str, float]:
        """Mean ms per frame on each of the session's stage threads (``THREAD_STAGES``), from ``stages_ms``."""
        return {
            thread: sum(self.stages_ms.get(stage, 0.0) for stage in stages)
            for thread, stages in THREAD_STAGES.items()
            if any(stage in self.stages_ms for stage in stages)
        }

    @property
    def slowest_stage_fps(self) -> float | None:
        """1 / the slowest stage's time per frame: what a pipeline of these stages can deliver at most."""
        stages = self.thread_stages_ms()
        return 1000 / max(stages.values()) if stages and max(stages.values()) > 0 else None

    @property
    def delivered(self) -> float | None:
        """Share of input frames that came out (latency mode; throughput counts only a window)."""
        return self.frames_out / self.frames_in if self.frames_in else None

    def set_metrics(self, before: dict[str, float], after: dict[str, float]) -> None:
        """From two ``Workers.metrics()`` snapshots: mean ms per frame per stage, video frames dropped by reason."""
        delta = {key: value - before.get(key, 0.0) for key, value in after.items()}
        for key, value in delta.items():
            kind, _, name = key.partition(":")
            if kind == "stage" and delta.get(f"stage_count:{name}", 0) > 0:
                self.stages_ms[name] = 1000 * value / delta[f"stage_count:{name}"]
            elif kind == "dropped" and value > 0:
                self.dropped[name] = int(value)

    def set_latency(self, from_segment: Sequence[float], added: Sequence[float]) -> None:
        if not added:
            return
        self.frames_matched = len(added)
        self.seg_p50_ms, self.seg_p95_ms = 1000 * percentile(from_segment, 50), 1000 * percentile(from_segment, 95)
        self.added_p50_ms, self.added_p95_ms = 1000 * percentile(added, 50), 1000 * percentile(added, 95)

    def to_json(self) -> dict[str, object]:
        data = dict(self.__dict__)
        data["cpu_ms_per_frame"] = self.cpu_ms_per_frame
        return data
