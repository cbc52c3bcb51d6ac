"""Livepeer Live Runner support (go-livepeer v0.9+, protocols.md 3b).

- the wire (header names, paths, heartbeat fields, Go durations, channel descriptors) is ``byoc_edge.liverunner``,
  shared with the ``byoc-registrar`` sidecar.
- ``control``: the runner's session callbacks to the orchestrator (create channels, stop).
- ``sessions``: a proxied app request -> channels -> a session of our ``Worker`` (the same pipeline as a BYOC
  ``/stream/start``), released at the orchestrator when it ends.
"""
