"""What a stream's data channel carries: the processor's items, batched as pytrickle does. Pure.

pytrickle ``client.py`` ``_send_data_loop`` sends, every 333 ms, everything the processor queued as ONE line
holding a JSON array (``json.dumps(items) + "\\n"``), and ``[]`` as a keepalive when nothing was sent for
25 s. The gateway relays each line as one server-sent event (go-livepeer ``byoc/trickle.go``, read with a
``bufio.Scanner``, whose default limit is 64 KiB a line), so SSE clients written for pytrickle workers get a
list per event. A batch too long for one line is split into several arrays; an item too long on its own can
never be delivered and is dropped, and the caller reports it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# bufio.MaxScanTokenSize: the gateway's scanner refuses a longer line, newline included.
MAX_LINE_BYTES = 64 * 1024
KEEPALIVE = b"[]\n"


@dataclass(frozen=True)
class Batch:
    """One interval's payload: the lines to publish (one segment), and items too long to send at all."""

    payload: bytes
    too_long: int = 0


def _encode(item: Any) -> bytes:
    return json.dumps(item, default=str, ensure_ascii=False).encode()


def batch(items: list[Any], max_line: int = MAX_LINE_BYTES) -> Batch:
    """The segment for one interval: ``[item, ...]`` lines of at most `max_line` bytes each."""
    lines: list[bytes] = []
    current: list[bytes] = []
    size = 3  # "[", "]" and the newline
    too_long = 0
    for item in items:
        encoded = _encode(item)
        if len(encoded) + 3 > max_line:
            too_long += 1
            continue
        extra = len(encoded) + (1 if current else 0)  # the comma
        if current and size + extra > max_line:
            lines.append(b"[" + b",".join(current) + b"]\n")
            current, size, extra = [], 3, len(encoded)
        current.append(encoded)
        size += extra
    if current:
        lines.append(b"[" + b",".join(current) + b"]\n")
    return Batch(b"".join(lines), too_long)
