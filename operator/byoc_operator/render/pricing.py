"""Prices as each protocol takes them. Pure.

- BYOC (``/capability/register``): ``price_per_unit`` / ``price_scaling`` in ``currency`` per second of compute
  (go-livepeer ``byoc/stream_orchestrator.go`` debits by the second); ``spec.pricing`` holds exactly those fields.
- Live Runner (heartbeats and static entries): ``price_info`` in USD (``ai/runner/live_runner.go``
  ``normalizeLiveRunnerPriceInfo``), from ``spec.pricing.liveRunner``.
"""

from __future__ import annotations

from byoc_operator import api


def price_info(pricing: api.Pricing) -> dict[str, str] | None:
    """``price_info`` as upstream's ``LiveRunnerPriceInfo`` (price kept as the exact decimal string)."""
    price = pricing.live_runner
    if price is None:
        return None
    return {"price": price.price, "currency": price.currency, "unit": price.unit}
