"""``python -m benchmarks.runtime.whatif_runtime [--no-hold] [--noparse] [byoc-runtime flags]``: byoc-runtime with
latency changes patched in at start-up, to measure what they would gain (``diagnose.py whatif``). Diagnostics
only; the runtime's code is unchanged.

``--no-hold``: the jitter buffer (``queues.Pacer``) releases every frame the moment it is decoded.
``--noparse``: the input demuxer (``media.decode.SegmentDecoder``) is opened with ``fflags=+noparse``: PES payloads go
to the decoder as packets, without libavformat's H.264 parser, which holds each frame until the next one starts.
"""

from __future__ import annotations

import sys
from typing import Any

import av

PATCHES = ("--no-hold", "--noparse")


def _apply(patches: list[str]) -> None:
    if "--no-hold" in patches:
        from byoc_runtime import queues

        queues.Pacer.release_at = lambda self, pts, arrival: arrival  # type: ignore[method-assign]
    if "--noparse" in patches:
        real_open = av.open

        def open_noparse(file: Any, mode: str = "r", **kw: Any) -> Any:
            if mode == "r" and kw.get("format") == "mpegts":
                kw["options"] = {**(kw.get("options") or {}), "fflags": "+noparse"}
            return real_open(file, mode, **kw)

        av.open = open_noparse  # type: ignore[assignment]


if __name__ == "__main__":
    _apply([a for a in sys.argv[1:] if a in PATCHES])
    from byoc_runtime.main import main

    sys.exit(main([a for a in sys.argv[1:] if a not in PATCHES]))
