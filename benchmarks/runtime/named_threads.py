"""``python -m benchmarks.runtime.named_threads [byoc-runtime flags]``: byoc-runtime with every Python thread's
name copied to its OS thread (``prctl(PR_SET_NAME)``), so that per-thread CPU time in ``/proc/PID/task`` can be
attributed (``diagnose.py threads``). Diagnostics only; the runtime itself is unchanged."""

from __future__ import annotations

import ctypes
import sys
import threading

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_PR_SET_NAME = 15
_bootstrap_inner = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]


def _named_bootstrap(self: threading.Thread) -> None:
    _libc.prctl(_PR_SET_NAME, self.name[:15].encode(), 0, 0, 0)
    _bootstrap_inner(self)


threading.Thread._bootstrap_inner = _named_bootstrap  # type: ignore[attr-defined]

if __name__ == "__main__":
    from byoc_runtime.main import main

    sys.exit(main())
