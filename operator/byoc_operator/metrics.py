"""Prometheus metrics of the operator: what it writes, how often it reconciles, how registration goes."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

API_WRITES = Counter(
    "byoc_operator_api_writes_total", "Writes of the operator that the Kubernetes API accepted", ["verb", "kind"]
)
RECONCILES = Counter("byoc_operator_reconciles_total", "Reconcile runs of a BYOCWorker", ["result"])
RECONCILE_SECONDS = Histogram(
    "byoc_operator_reconcile_seconds",
    "Duration of one reconcile run",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
REGISTRATION_CALLS = Counter("byoc_operator_registration_calls_total", "Calls to orchestrators", ["call", "result"])
