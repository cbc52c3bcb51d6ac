"""Waiting for things on this machine: a free loopback port, a condition that becomes true (from plain code:
``wait_for``; from a coroutine: ``eventually``), a child's first line, a child that stops. The one poll helper for
the tests, the demo and the benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the caller binds it soon after)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], T], timeout: float = 60, what: str = "condition", interval: float = 0.25) -> T:
    """Poll until check() returns something truthy (exceptions count as 'not yet'); fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # the thing may not exist yet
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")


async def eventually(
    check: Callable[[], T | Awaitable[T]], seconds: float = 60, what: str = "condition", interval: float = 0.1
) -> T:
    """``wait_for`` for async code: ``check`` may be a plain or an async callable, and the loop keeps running
    between polls."""
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if asyncio.iscoroutine(last) or isinstance(last, asyncio.Future):
                last = await last
        except Exception as exc:  # the thing may not exist yet
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {seconds:.0f}s waiting for {what}; last seen: {last!r}")


def read_first_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The first line a child prints on stdout (how our helper servers announce their address), without blocking
    past `timeout` or hanging on a child that died first."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            break
        ready, _, _ = select.select([proc.stdout], [], [], min(left, 0.2))
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace")


def stop_child(proc: subprocess.Popen[bytes], timeout: float, sig: int = signal.SIGTERM) -> None:
    """`sig` (SIGTERM), SIGKILL if it has not exited within `timeout`, then close the pipes we hold to it."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):  # a pipe the child broke
                pipe.close()
