"""Session router: one URL per capability in front of many worker pods (``byoc-router``).

A go-livepeer orchestrator keeps one URL per BYOC capability and does not enforce its capacity, so each
BYOCWorker gets a router: the registered URL points here, and the router

- sends each ``/stream/start`` to a pod with a free slot, and answers 503 with a reason when none has one;
- pins the stream (``X-Stream-Id``, else ``gateway_request_id``) to that pod for ``/stream/params``,
  ``/stream/status`` and ``/stream/stop``, and sends a repeated start to the same pod;
- learns the pods from a static list, a file, or the A records of a headless Service, and each pod's load and
  streams from its ``/stream/status`` (``/health`` as a fallback).

The pods are the source of truth for slots and streams; the router only keeps a cache (see ``streams.py`` for
why that makes restarts and several replicas safe). Imports stay to aiohttp, pydantic, prometheus-client and
the standard library, so the router starts fast and never loads torch or PyAV.
"""
