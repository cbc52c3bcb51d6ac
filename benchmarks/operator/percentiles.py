"""p50 / p95 / max of a list of durations, as the results tables show them."""

from __future__ import annotations

import statistics


def percentiles(times: list[float]) -> dict[str, float]:
    qs = statistics.quantiles(times, n=20, method="inclusive") if len(times) > 1 else [times[0]] * 19
    return {"p50": round(statistics.median(times), 2), "p95": round(qs[18], 2), "max": round(max(times), 2)}
