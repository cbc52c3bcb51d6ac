"""``byoc-drain``: the worker container's preStop hook for the bundled runtime.

The runtime only drains for callers inside its pod (``byoc_runtime/api/server.py`` ``drain``), and the
kubelet's ``httpGet`` hooks come from the node, so the hook runs in the container and calls the runtime over
loopback (or on the one address it listens on, when ``BYOC_HOST`` names one). It returns once no stream runs
or the drain grace is over (``GET /drain?wait=true``), holding the SIGTERM back until then.
Standard library only: it must start fast and never depend on the runtime's heavy imports.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("BYOC_PORT", "8000")
    host = os.environ.get("BYOC_HOST", "")
    if host in ("", "0.0.0.0", "::"):  # listening on every address: loopback is one
        host = "127.0.0.1"
    try:
        # No timeout: the kubelet bounds the hook by the termination grace.
        with urllib.request.urlopen(f"http://{host}:{port}/drain?wait=true") as reply:
            print(reply.read().decode(errors="replace"))
    except (urllib.error.URLError, OSError) as exc:
        print(f"drain hook: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
