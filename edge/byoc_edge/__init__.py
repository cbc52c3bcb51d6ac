"""The torch-free parts of a BYOC worker deployment (``byoc-edge``).

- ``router``: ``byoc-router``, one URL per capability in front of many worker pods.
- ``registrar``: ``byoc-registrar``, the Live Runner registration and drain sidecar.
- ``drain``: ``byoc-drain``, the bundled runtime's preStop hook.
- ``schema`` (request bodies), ``rest`` (error replies, middlewares, routes, the stream key) and ``liverunner``
  (the Live Runner wire): the worker REST contract, shared with the runtime (``byoc_runtime`` imports them).
- ``bearer`` (token checks), ``logs`` (JSON logs), ``settings`` (flags with environment fallbacks), ``same_pod``.

Imports stay to aiohttp, pydantic, prometheus-client and the standard library.
"""

__version__ = "0.1.0"
