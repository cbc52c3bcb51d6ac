"""``python -m benchmarks.runtime.whatif_runtime [--no-hold] [byoc-runtime flags]``: byoc-runtime with a latency
change patched in at start-up, to measure what it would gain (``diagnose.py whatif``). Diagnostics only; the
runtime's code is unchanged.

``--no-hold``: the jitter buffer (``queues.Pacer``) releases every frame the moment it is decoded.
(``--noparse``, FFmpeg's demuxer without its H.264 parser, went into the runtime and then the demuxer itself was
replaced by ``media.mpegts``; see ``demux/``.)
"""

from __future__ import annotations

import sys

PATCHES = ("--no-hold",)


def _apply(patches: list[str]) -> None:
    if "--no-hold" in patches:
        from byoc_runtime import queues

        queues.Pacer.release_at = lambda self, pts, arrival: arrival  # type: ignore[method-assign]


if __name__ == "__main__":
    _apply([a for a in sys.argv[1:] if a in PATCHES])
    from byoc_runtime.main import main

    sys.exit(main([a for a in sys.argv[1:] if a not in PATCHES]))
