"""Results as files: ``results.json`` (raw), ``results.md`` (tables, goals, analysis) and ``results.png``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .measurement import IMPLEMENTATIONS, LABELS, Measurement

GOAL_THROUGHPUT = 1.5  # ours >= 1.5 x PyTrickle fps
GOAL_LATENCY = 0.5  # ours added latency <= 0.5 x PyTrickle's
GOAL_FLOOR = 1.2  # floor fps <= 1.2 x ours


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
        for impl in IMPLEMENTATIONS:
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
    stages = ["queue", "convert", "process", "encode", "decode_to_encoded"]
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
        for impl in IMPLEMENTATIONS:
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


def goals(results: Sequence[Measurement]) -> list[dict[str, Any]]:
    """Each goal per configuration: the figures, the ratio and whether it is met."""
    idx = _index(results)
    out: list[dict[str, Any]] = []
    for size, n in configs(results, "throughput"):
        ours, pt, fl = (idx.get((i, "throughput", size, n)) for i in ("ours", "pytrickle", "floor"))
        if ours and pt:
            r = _ratio(ours.fps, pt.fps)
            out.append(
                {
                    "goal": f"throughput >= {GOAL_THROUGHPUT}x PyTrickle",
                    "size": size,
                    "sessions": n,
                    "ratio": r,
                    "met": r is not None and r >= GOAL_THROUGHPUT,
                }
            )
        if ours and fl:
            r = _ratio(fl.fps, ours.fps)
            out.append(
                {
                    "goal": f"floor / ours <= {GOAL_FLOOR}x",
                    "size": size,
                    "sessions": n,
                    "ratio": r,
                    "met": r is not None and r <= GOAL_FLOOR,
                }
            )
    for size, n in configs(results, "latency"):
        ours, pt = idx.get(("ours", "latency", size, n)), idx.get(("pytrickle", "latency", size, n))
        if ours and pt:
            r50 = _ratio(ours.added_p50_ms, pt.added_p50_ms)
            r95 = _ratio(ours.added_p95_ms, pt.added_p95_ms)
            met = r50 is not None and r95 is not None and r50 <= GOAL_LATENCY and r95 <= GOAL_LATENCY
            out.append(
                {
                    "goal": f"added latency <= {GOAL_LATENCY}x PyTrickle (p50 and p95)",
                    "size": size,
                    "sessions": n,
                    "ratio": r50,
                    "ratio_p95": r95,
                    "met": met,
                }
            )
    return out


def goals_table(items: list[dict[str, Any]]) -> list[str]:
    lines = ["| goal | size | sessions | measured | met |", "|---|---|---|---|---|"]
    for g in items:
        measured = _f(g["ratio"], 2, "x") + (f" (p95 {_f(g['ratio_p95'], 2, 'x')})" if "ratio_p95" in g else "")
        lines.append(
            f"| {g['goal']} | {g['size']} | {g['sessions']} | {measured} | {'yes' if g['met'] else '**no**'} |"
        )
    return lines


def _load_range(results: Sequence[Measurement]) -> str:
    loads = [m.load_avg for m in results if m.load_avg is not None]
    return f"{min(loads):.1f}-{max(loads):.1f}" if loads else "n/a"


def write_markdown(path: Path, results: Sequence[Measurement], meta: dict[str, Any], analysis: str) -> None:
    errors = [f"- {m.impl} {m.mode} {m.size} x{m.sessions}: {m.error}" for m in results if m.error]
    machine = meta["machine"]
    lines = [
        "# Runtime benchmark results",
        "",
        f"Measured {meta['date']} on {machine['cpu']} ({machine['cores']} cores, {machine['memory_gb']} GB, "
        f"no GPU), Python {machine['python']}. Generated by `{meta['command']}`; raw figures in `results.json`, "
        "charts in `results.png`, method in `README.md`.",
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
        "Our runtime's own stage timings in those runs (mean ms per frame, from its `/metrics`): `queue` = "
        "decoded -> picked up by the processor (includes the jitter buffer's hold), `convert` = scale to RGB + "
        "tensor, `encode` = tensor -> H.264/MPEG-TS bytes incl. the hop to the encode thread, `decode_to_encoded` "
        "= decoded -> encoded.",
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
    lines += [
        "## Goals",
        "",
        *goals_table(goals(results)),
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
    impls = [i for i in IMPLEMENTATIONS if any(m.impl == i for m in results)]
    width = 0.8 / len(impls)
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
    path: Path, results: Sequence[Measurement], meta: dict[str, Any], every: Sequence[Measurement] = ()
) -> None:
    payload = {
        "meta": meta,
        "goals": goals(results),
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
