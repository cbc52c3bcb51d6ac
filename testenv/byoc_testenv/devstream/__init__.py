"""``byoc-dev-stream`` (``cli``) and the pieces it is made of, which the runtime benchmark and the e2e tests use
too: ``mpegts`` (frame timing), ``channels`` (real-time input, output read back), ``latency``, ``worker`` (a worker
subprocess), ``sources`` and ``pictures``."""
