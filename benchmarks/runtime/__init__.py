"""Runtime benchmark: our runtime vs PyTrickle 0.1.6 vs a bare PyAV decode + encode floor, on the CPU.

Run it all with ``python -m benchmarks.runtime`` from the repo root (see README.md).
"""
