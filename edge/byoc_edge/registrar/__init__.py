"""``byoc-registrar``: a sidecar that registers ONE worker pod as a Livepeer Live Runner (protocols.md 3b).

It works with any worker image: it only speaks HTTP, to the worker (``/health``, ``/hardware/info``,
``/version``, ``POST /drain`` when the worker has it) and to the orchestrators (heartbeat, unregister).

Modules: ``config`` (flags and environment), ``credentials`` (secret files, log redaction), ``local_worker``
(what the worker says about itself), ``advert`` (worker state -> heartbeat body, pure), ``registration``
(one orchestrator: register, heartbeat, re-register, unregister), ``registrar`` (all of it over time, and the
drain), ``server`` (its own ``/health``, ``/metrics``, ``/drain``), ``main`` (the CLI).
"""
