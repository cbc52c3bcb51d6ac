"""Results as files: ``results.json`` (raw), ``results.md`` (tables, goals, analysis) and ``results.png``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .measurement import LABELS, PASSTHROUGH, THREAD_STAGES, Measurement

# The goals (CPU, passthrough unless named).
GOAL_ADDED_MS = {"512x512": (10.0, 20.0), "1280x720": (15.0, 30.0)}  # 1 session, real time: added p50, p95
GOAL_SESSIONS_RATIO = 1.5  # 3 sessions' added latency <= 1.5x 1 session's (p50 and p95)
GOAL_THROUGHPUT = 2.0  # ours >= 2.0x PyTrickle fps, every configuration
GOAL_FLOOR = {"1280x720": 1.3, "512x512": 1.6}  # floor fps / ours, 1 session
GOAL_CARTOON = 0.9  # cartoon throughput >= 90 % of 1 / the slowest stage
GOAL_RSS_DRIFT = 0.02  # soak: resident memory after warm-up within 2 %


def _index(results: Sequence[Measurement]) -> dict[tuple[str, str, str, int], Measurement]:
    return {(m.impl, *m.key): m for m in results}


def _f(value: float | None, digits: int = 0, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{suffix}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def configs(results: Sequence[Measurement], mode: str) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []
    for m in results:
        if m.mode == mode and (m.size, m.sessions) not in seen:
            seen.append((m.size, m.sessions))
    return seen


def throughput_table(results: Sequence[Measurement]) -> list[str]:
    idx = _index(results)
    lines = [
        "| size | sessions | implementation | fps (all sessions) | per session | vs PyTrickle | floor / this "
        "| CPU ms/frame | never came out (worker's own drop count) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size, n in configs(results, "throughput"):
        pt, fl = idx.get(("pytrickle", "throughput", size, n)), idx.get(("floor", "throughput", size, n))
        for impl in PASSTHROUGH:
            m = idx.get((impl, "throughput", size, n))
            if m is None:
                continue
            per = " / ".join(f"{v:.0f}" for v in m.fps_per_session)
            vs_pt = _f(_ratio(m.fps, pt.fps if pt else None), 2, "x") if impl != "pytrickle" else ""
            vs_floor = _f(_ratio(fl.fps if fl else None, m.fps), 2, "x") if impl != "floor" else ""
            lines.append(
                f"| {size} | {n} | {LABELS[impl]} | {m.fps:.1f} | {per} | {vs_pt} | {vs_floor} "
                f"| {_f(m.cpu_ms_per_frame, 1)} | {_drops(m)} |"
            )
    return lines


def _drops(m: Measurement) -> str:
    if m.impl == "floor":
        return ""
    own = ", ".join(f"{reason} {count}" for reason, count in sorted(m.dropped.items()))
    return f"{m.written_off}" + (f" ({own})" if own else "")


def stages_table(results: Sequence[Measurement]) -> list[str]:
    """Where our runtime's time goes per frame (its own /metrics histograms), latency mode."""
    rows = [m for m in results if m.mode == "latency" and m.stages_ms]
    if not rows:
        return []
    stages = ["decode", "queue", "convert", "process", "encode", "decode_to_encoded"]
    lines = [
        "| size | sessions | implementation | " + " | ".join(stages) + " |",
        "|---|---|---|" + "---|" * len(stages),
    ]
    for m in rows:
        cells = " | ".join(_f(m.stages_ms.get(stage), 1) for stage in stages)
        lines.append(f"| {m.size} | {m.sessions} | {LABELS[m.impl]} | {cells} |")
    return lines


def latency_table(results: Sequence[Measurement]) -> list[str]:
    idx = _index(results)
    lines = [
        "| size | sessions | implementation | end-to-end p50 / p95 ms | added p50 / p95 ms | frames out / in "
        "| first output s | CPU ms/frame |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, n in configs(results, "latency"):
        for impl in PASSTHROUGH:
            m = idx.get((impl, "latency", size, n))
            if m is None:
                continue
            lines.append(
                f"| {size} | {n} | {LABELS[impl]} | {_f(m.seg_p50_ms)} / {_f(m.seg_p95_ms)} "
                f"| {_f(m.added_p50_ms, 1)} / {_f(m.added_p95_ms, 1)} | {m.frames_out} / {m.frames_in} "
                f"| {_f(m.first_output_s, 2)} | {_f(m.cpu_ms_per_frame, 1)} |"
            )
    return lines


def baseline_table(results: Sequence[Measurement]) -> list[str]:
    """Ours against ours-before (another source tree, same run): the change's effect, as ratios."""
    idx = _index(results)
    lines = [
        "| mode | size | sessions | what | ours before | ours | ours / before |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode in ("throughput", "latency"):
        for size, n in configs(results, mode):
            before, after = idx.get(("ours-before", mode, size, n)), idx.get(("ours", mode, size, n))
            if before is None or after is None:
                continue
            figures: list[tuple[str, float | None, float | None]] = (
                [("fps", before.fps, after.fps)]
                if mode == "throughput"
                else [
                    ("added p50 ms", before.added_p50_ms, after.added_p50_ms),
                    ("added p95 ms", before.added_p95_ms, after.added_p95_ms),
                ]
            )
            figures.append(("CPU ms/frame", before.cpu_ms_per_frame, after.cpu_ms_per_frame))
            for what, b, a in figures:
                ratio = _f(_ratio(a, b), 2, "x")
                lines.append(f"| {mode} | {size} | {n} | {what} | {_f(b, 1)} | {_f(a, 1)} | {ratio} |")
    return lines if len(lines) > 2 else []


def cartoon_table(results: Sequence[Measurement]) -> list[str]:
    """The processor doing real work: its throughput against the slowest of the session's stage threads."""
    rows = [m for m in results if m.impl == "ours-cartoon"]
    if not rows:
        return []
    names = list(THREAD_STAGES)
    lines = [
        "| size | sessions | fps | " + " | ".join(f"{n} ms/frame" for n in names) + " | 1 / slowest stage fps "
        "| fps / (1 / slowest) | queue ms/frame | CPU ms/frame |",
        "|---|---|---|" + "---|" * len(names) + "---|---|---|---|",
    ]
    for m in rows:
        stages = m.thread_stages_ms()
        cells = " | ".join(_f(stages.get(n), 1) for n in names)
        bound = m.slowest_stage_fps
        lines.append(
            f"| {m.size} | {m.sessions} | {m.fps:.1f} | {cells} | {_f(bound, 1)} | {_f(_ratio(m.fps, bound), 2)} "
            f"| {_f(m.stages_ms.get('queue'), 1)} | {_f(m.cpu_ms_per_frame, 1)} |"
        )
    return lines


@dataclass(frozen=True, slots=True)
class Goal:
    """One of the issue's goals for one configuration: what was measured, and whether it is met (None: not
    measured in this run)."""

    goal: str
    size: str
    sessions: int | str
    measured: str
    met: bool | None


@dataclass(frozen=True)
class SideRuns:
    """What the benchmark's sibling commands measured (their JSON files beside results.json), when they ran."""

    soak: dict[str, Any] | None = None  # ``python -m benchmarks.runtime.soak``
    inputs: dict[str, Any] | None = None  # ``python -m benchmarks.runtime.inputs``

    @classmethod
    def load(cls, directory: Path) -> SideRuns:
        def read(name: str) -> dict[str, Any] | None:
            path = directory / name
            return json.loads(path.read_text()) if path.exists() else None

        return cls(read(SOAK_FILE), read(INPUTS_FILE))


SOAK_FILE = "soak.json"
INPUTS_FILE = "inputs.json"


def goals(results: Sequence[Measurement], side: SideRuns = SideRuns()) -> list[Goal]:
    """Each of the issue's goals per configuration it names: what was measured and whether it is met (None:
    not measured in this run)."""
    idx = _index(results)
    out: list[Goal] = []
    for size, (p50_goal, p95_goal) in GOAL_ADDED_MS.items():
        one, three = idx.get(("ours", "latency", size, 1)), idx.get(("ours", "latency", size, 3))
        goal = f"added latency p50 / p95 <= {p50_goal:g} / {p95_goal:g} ms"
        if one is not None and one.added_p50_ms is not None and one.added_p95_ms is not None:
            met = one.added_p50_ms <= p50_goal and one.added_p95_ms <= p95_goal
            out.append(Goal(goal, size, 1, f"{one.added_p50_ms:.1f} / {one.added_p95_ms:.1f} ms", met))
        else:
            out.append(Goal(goal, size, 1, "not measured", None))
        goal = f"added latency, 3 sessions <= {GOAL_SESSIONS_RATIO:g}x 1 session (p50 and p95)"
        r50 = _ratio(three.added_p50_ms, one.added_p50_ms) if one and three else None
        r95 = _ratio(three.added_p95_ms, one.added_p95_ms) if one and three else None
        if r50 is not None and r95 is not None and three is not None:
            measured = f"{r50:.2f}x / {r95:.2f}x ({three.added_p50_ms:.1f} / {three.added_p95_ms:.1f} ms)"
            out.append(Goal(goal, size, 3, measured, r50 <= GOAL_SESSIONS_RATIO and r95 <= GOAL_SESSIONS_RATIO))
        else:
            out.append(Goal(goal, size, 3, "not measured", None))
    for size, n in configs(results, "throughput"):
        ours, pt = idx.get(("ours", "throughput", size, n)), idx.get(("pytrickle", "throughput", size, n))
        r = _ratio(ours.fps, pt.fps) if ours and pt else None
        goal = f"throughput >= {GOAL_THROUGHPUT:g}x PyTrickle"
        out.append(
            Goal(goal, size, n, _f(r, 2, "x") if r else "not measured", None if r is None else r >= GOAL_THROUGHPUT)
        )
    for size, limit in GOAL_FLOOR.items():
        ours, fl = idx.get(("ours", "throughput", size, 1)), idx.get(("floor", "throughput", size, 1))
        r = _ratio(fl.fps, ours.fps) if ours and fl else None
        goal = f"floor / ours throughput <= {limit:g}x"
        out.append(Goal(goal, size, 1, _f(r, 2, "x") if r else "not measured", None if r is None else r <= limit))
    cartoons: list[Measurement | None] = [m for m in results if m.impl == "ours-cartoon"]
    cartoons = cartoons or [None]
    for m in cartoons:
        goal = f"`cartoon` throughput >= {GOAL_CARTOON:.0%} of 1 / slowest stage"
        bound = m.slowest_stage_fps if m is not None else None
        r = _ratio(m.fps, bound) if m is not None else None
        if m is None or r is None:
            out.append(Goal(goal, m.size if m else "512x512", 1, "not measured", None))
        else:
            measured = f"{r:.0%} ({m.fps:.1f} of {bound:.1f} fps)"
            out.append(Goal(goal, m.size, 1, measured, r >= GOAL_CARTOON))
    out += soak_goals(side.soak)
    out += inputs_goals(side.inputs)
    return out


def inputs_goals(inputs: dict[str, Any] | None) -> list[Goal]:
    """Each gateway input keeps the 1-session latency goal of its size beyond what the decoder holds to reorder
    B-frames, and loses frames only in the segment that was damaged."""
    if inputs is None:
        return [
            Goal(
                "gateway inputs: added latency within the goal, frames lost only where damaged",
                "",
                1,
                "not measured",
                None,
            )
        ]
    out = []
    for row in inputs["inputs"]:
        p50, p95, lost = row["beyond_p50_ms"], row["beyond_p95_ms"], row["lost"]
        goal = (
            f"added p50 / p95 beyond the decoder's reorder hold <= {row['goal_p50_ms']:g} / {row['goal_p95_ms']:g} "
            "ms, frames lost only in a damaged segment"
        )
        if p50 is None or p95 is None:
            out.append(Goal(goal, row["input"], 1, row.get("error") or "no frame came out", False))
            continue
        measured = (
            f"{p50:.1f} / {p95:.1f} ms; lost {lost['damaged_segment']} in the damaged segment, "
            f"{lost['at_stop']} held at the stop, {lost['elsewhere']} elsewhere"
        )
        met = p50 <= row["goal_p50_ms"] and p95 <= row["goal_p95_ms"] and lost["elsewhere"] == 0
        out.append(Goal(goal, row["input"], 1, measured, met))
    return out


def soak_goals(soak: dict[str, Any] | None) -> list[Goal]:
    goals_ = [
        "soak: 0 frames lost",
        f"soak: RSS after warm-up within {GOAL_RSS_DRIFT:.0%}",
        "soak: output timestamps exact",
    ]
    if soak is None:
        return [Goal(g, "1280x720", 1, "not measured", None) for g in goals_]
    size, minutes = soak["size"], soak["minutes"]
    label = f"{size}, {minutes:g} min"
    drift = soak["rss_drift"]
    return [
        Goal(goals_[0], label, 1, f"{soak['frames_lost']} of {soak['frames_in']}", soak["frames_lost"] == 0),
        Goal(
            goals_[1],
            label,
            1,
            f"{drift:+.1%} (max {soak['rss_max_drift']:+.1%}; "
            f"{soak['rss_warm_mb']:.0f} -> {soak['rss_end_mb']:.0f} MB)",
            abs(drift) <= GOAL_RSS_DRIFT and abs(soak["rss_max_drift"]) <= GOAL_RSS_DRIFT,
        ),
        Goal(
            goals_[2],
            label,
            1,
            f"{soak['timestamps_mismatched']} output frames off their input timestamp, "
            f"{soak['timestamps_out_of_order']} out of order",
            soak["timestamps_mismatched"] == 0 and soak["timestamps_out_of_order"] == 0,
        ),
    ]


def goals_table(items: list[Goal]) -> list[str]:
    lines = ["| goal | size | sessions | measured | met |", "|---|---|---|---|---|"]
    for g in items:
        met = "not measured" if g.met is None else "yes" if g.met else "**no**"
        lines.append(f"| {g.goal} | {g.size} | {g.sessions} | {g.measured} | {met} |")
    return lines


def soak_section(soak: dict[str, Any] | None) -> list[str]:
    if soak is None:
        return ["## Soak", "", "Not run yet: `python -m benchmarks.runtime.soak --minutes 10`.", ""]
    return [
        "## Soak (real-time stream)",
        "",
        f"`{soak['command']}`, {soak['date']}: one {soak['size']} {soak['fps']} fps stream with audio, published "
        f"in real time for {soak['minutes']:g} minutes (input timestamps running on, no loop) through our runtime "
        f"(passthrough); resident memory sampled every {soak['rss_every_s']:g} s, warm-up = the first "
        f"{soak['warmup_s']:g} s. Load average during the run {soak['load_min']:.1f}-{soak['load_max']:.1f}.",
        "",
        "| frames in | frames out | lost | worker's drops | added p50 / p95 ms | RSS at warm-up end / end / max MB "
        "| drift end / max | output frames off their timestamp | out of order |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {soak['frames_in']} | {soak['frames_out']} | {soak['frames_lost']} | {soak['dropped'] or 'none'} "
        f"| {_f(soak['added_p50_ms'], 1)} / {_f(soak['added_p95_ms'], 1)} "
        f"| {soak['rss_warm_mb']:.0f} / {soak['rss_end_mb']:.0f} / {soak['rss_peak_mb']:.0f} "
        f"| {soak['rss_drift']:+.1%} / {soak['rss_max_drift']:+.1%} | {soak['timestamps_mismatched']} "
        f"| {soak['timestamps_out_of_order']} |",
        "",
        *soak_details(soak),
    ]


def soak_details(soak: dict[str, Any]) -> list[str]:
    """When the lost frames were sent and where in their segments, and the worker's garbage collector pauses."""
    lines = []
    lost = soak.get("lost")
    if lost:
        at = ", ".join(f"{f['at_s']:.1f} s (frame {f['frame']})" for f in lost[:24])
        more = f" and {len(lost) - 24} more" if len(lost) > 24 else ""
        lines += [f"Lost frames, sent at (seconds into the stream; place in its 1 s segment): {at}{more}.", ""]
    pauses = soak.get("gc_pauses")
    if pauses:
        by_generation = "; ".join(
            f"generation {gen}: {p['count']:.0f} ({p['total_s']:.2f} s in all, {p['over_40ms']:.0f} over 40 ms)"
            for gen, p in sorted(pauses.items())
        )
        lines += [f"The worker's garbage collector pauses (`byoc_gc_pause_seconds`): {by_generation}.", ""]
    return lines


def inputs_section(inputs: dict[str, Any] | None) -> list[str]:
    if inputs is None:
        return ["## Gateway inputs", "", "Not run yet: `python -m benchmarks.runtime.inputs`.", ""]
    lines = [
        "## Gateway inputs (real-time, 1 session)",
        "",
        f"`{inputs['command']}`, {inputs['date']}: each input made as FFmpeg-based ingest makes it (x264, one "
        f"continuous FFmpeg MPEG-TS muxer cut into 1 s segments), {inputs['seconds']} s published in real time "
        "through our runtime (passthrough), frames of the first 4 s left out; the damaged ones have segment "
        f"{inputs['damaged_segment']} overwritten with random bytes over a tenth of its length from its "
        "middle, or ending halfway. Added latency is split at the moment FFmpeg's decoder may release the frame "
        "(its output rule replayed on the input: with B-frames it keeps 2 pictures back, in decode order): the "
        "decoder's reorder hold before, the runtime's own latency beyond.",
        "",
        "| input | added p50 / p95 ms | decoder's reorder hold p50 / p95 ms | beyond it p50 / p95 ms (goal) "
        "| frames out / in | lost: in the damaged segment / held at the stop / elsewhere | worker's drops "
        "| CPU ms/frame |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in inputs["inputs"]:
        lost = row["lost"]
        lines.append(
            f"| {row['input']} | {_f(row['added_p50_ms'], 1)} / {_f(row['added_p95_ms'], 1)} "
            f"| {_f(row['hold_p50_ms'], 1)} / {_f(row['hold_p95_ms'], 1)} "
            f"| {_f(row['beyond_p50_ms'], 1)} / {_f(row['beyond_p95_ms'], 1)} "
            f"({row['goal_p50_ms']:g} / {row['goal_p95_ms']:g}) | {row['frames_out']} / {row['frames_in']} "
            f"| {lost['damaged_segment']} / {lost['at_stop']} / {lost['elsewhere']} | {row['dropped'] or 'none'} "
            f"| {_f(row['cpu_ms_per_frame'], 1)} |"
        )
    return [*lines, ""]


def _load_range(results: Sequence[Measurement]) -> str:
    loads = [m.load_avg for m in results if m.load_avg is not None]
    return f"{min(loads):.1f}-{max(loads):.1f}" if loads else "n/a"


def write_markdown(
    path: Path, results: Sequence[Measurement], meta: dict[str, Any], analysis: str, side: SideRuns
) -> None:
    errors = [f"- {m.impl} {m.mode} {m.size} x{m.sessions}: {m.error}" for m in results if m.error]
    machine = meta["machine"]
    lines = [
        "# Runtime benchmark results",
        "",
        f"Measured {meta['date']} on {machine['cpu']} ({machine['cores']} cores, {machine['memory_gb']} GB, "
        f"no GPU), Python {machine['python']}. Generated by `{meta['command']}`; raw figures in `results.json`, "
        "charts in `results.png`, method in `README.md`. **No GPU was lent to this task: every figure is CPU-only; "
        "nothing was measured on a GPU.**",
        "",
        f"The machine is shared: its 1-minute load average at the end of the runs ranged {_load_range(results)} "
        f"on {machine['cores']} cores. Each figure is the best of {meta.get('repeat', 1)} run(s) "
        "(highest fps, lowest added latency; every run is in results.json), implementations taking turns within "
        "each configuration.",
        "",
        f"Versions: ours = byoc-runtime {meta['versions']['byoc_runtime']} (av {meta['versions']['av']}, "
        f"torch {meta['versions']['torch']}); PyTrickle = {meta['versions']['pytrickle']}. "
        f"Input: {meta['input']}.",
        "",
        "![charts](results.png)",
        "",
        "## Throughput (closed loop, saturating)",
        "",
        f"{meta['throughput']}",
        "",
        *throughput_table(results),
        "",
        "## Latency (real-time input)",
        "",
        f"{meta['latency']}",
        "",
        *latency_table(results),
        "",
        "Our runtime's own stage timings in those runs (mean ms per frame, from its `/metrics`): `decode` = the "
        "decoder call, `queue` = decoded -> picked up by the processor (includes the jitter buffer's hold), "
        "`convert` = scale to RGB + tensor (only when the processor reads the tensor: never for passthrough), "
        "`encode` = frame -> H.264/MPEG-TS bytes on the encode thread (audio is encoded on a thread of its own), "
        "`decode_to_encoded` = decoded -> encoded, hops between threads included.",
        "",
        *stages_table(results),
        "",
    ]
    if before_after := baseline_table(results):
        lines += [
            "## Before / after (ours against ours-before, the runtime of `--baseline`, in the same run)",
            "",
            *before_after,
            "",
        ]
    if cartoon := cartoon_table(results):
        lines += [
            "## A processor doing real work: `cartoon` (closed loop)",
            "",
            "The `cartoon` torch network (processors/cartoon.py) on the CPU, same closed loop as above. A session "
            "runs three stage threads: decode (`decode`), processor (`convert` + `process`) and encode (`encode`); "
            "their mean ms per frame, from the runtime's `/metrics` in the same window, bound the pipeline at "
            "1 / the slowest.",
            "",
            *cartoon,
            "",
        ]
    lines += soak_section(side.soak)
    lines += inputs_section(side.inputs)
    lines += [
        "## Goals",
        "",
        *goals_table(goals(results, side)),
        "",
    ]
    if errors:
        lines += ["Runs that reported a problem:", "", *errors, ""]
    lines += [analysis.strip(), ""]
    path.write_text("\n".join(lines))


def write_plot(path: Path, results: Sequence[Measurement]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = _index(results)
    colors = {"ours": "#1f77b4", "ours-before": "#9ecae1", "pytrickle": "#ff7f0e", "floor": "#7f7f7f"}
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.5))
    panels = [
        ("throughput", "fps", "Throughput under closed-loop load, all sessions (fps)"),
        ("latency", "seg", "End-to-end latency, real-time input: p50 bar, p95 tick (ms, log)"),
        ("latency", "added", "Latency added after the frame arrived: p50 bar, p95 tick (ms, log)"),
    ]
    impls = [i for i in PASSTHROUGH if any(m.impl == i for m in results)]
    width = 0.8 / max(1, len(impls))
    for ax, (mode, what, title) in zip(axes, panels, strict=True):
        cfgs = configs(results, mode)
        for k, impl in enumerate(impls):
            for i, (size, n) in enumerate(cfgs):
                m = idx.get((impl, mode, size, n))
                if m is None:
                    continue
                value, high = (
                    (m.fps, None) if what == "fps" else (getattr(m, f"{what}_p50_ms"), getattr(m, f"{what}_p95_ms"))
                )
                if value is None:
                    continue
                x = i + (k - (len(impls) - 1) / 2) * width
                ax.bar(x, value, width, color=colors[impl], label=LABELS[impl] if i == 0 else None)
                ax.annotate(f"{value:.0f}", (x, value), ha="center", va="bottom", fontsize=7)
                if high is not None:
                    ax.plot([x - width / 2, x + width / 2], [high, high], color="black", linewidth=1.2)
        ax.set_xticks(range(len(cfgs)), [f"{size}\n{n} session{'s' if n > 1 else ''}" for size, n in cfgs])
        ax.set_title(title, fontsize=10)
        if mode == "latency":
            ax.set_yscale("log")  # a worker that falls behind is seconds late, the floor a few ms
        ax.grid(axis="y", alpha=0.3)
    next((ax for ax in axes if ax.get_legend_handles_labels()[0]), axes[0]).legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_json(
    path: Path,
    results: Sequence[Measurement],
    meta: dict[str, Any],
    every: Sequence[Measurement] = (),
    side: SideRuns = SideRuns(),
) -> None:
    payload = {
        "meta": meta,
        "goals": [dataclasses.asdict(g) for g in goals(results, side)],
        "soak": side.soak,
        "inputs": side.inputs,
        "results": [m.to_json() for m in results],
        "all_runs": [m.to_json() for m in every],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")


def load_json(path: Path) -> tuple[list[Measurement], dict[str, Any], list[Measurement]]:
    """(reported results, meta, all runs) from a results.json."""
    payload = json.loads(path.read_text())
    fields = set(Measurement.__dataclass_fields__)

    def load(rows: list[dict[str, Any]]) -> list[Measurement]:
        return [Measurement(**{k: v for k, v in r.items() if k in fields}) for r in rows]

    return load(payload["results"]), payload["meta"], load(payload.get("all_runs", []))
