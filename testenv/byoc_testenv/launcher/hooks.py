"""Lifecycle hooks the way the kubelet runs them (``pkg/kubelet/lifecycle/handlers.go``,
``kuberuntime_container.go`` ``executePreStopHook``/``killContainer``).

Before a running container gets SIGTERM, its ``preStop`` hook runs, bounded by the grace period; whatever time the
hook took comes off the grace (at least 2 s remain, the kubelet's ``minimumGracePeriodInSeconds``). A failing
hook is logged and the stop goes on, as the kubelet does (it posts a ``FailedPreStopHook`` event; we log it).

- ``httpGet``: a GET to the pod IP (or ``host``) and port (a number, or the port name of this container), with
  its headers; any answer counts as done (the kubelet does not look at the status), a transport error fails.
- ``exec``: the command as a local process with the container's environment, its executable resolved through the
  image map and then this machine's PATH (standing in for the tools an image ships, such as ``sh``); a non-zero
  exit fails. Output goes to the container's log.
- ``sleep``: waits that many seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp

from .probes import resolve_port

log = logging.getLogger(__name__)

Obj = dict[str, Any]
MINIMUM_GRACE_SECONDS = 2.0  # kubelet: minimumGracePeriodInSeconds


def pre_stop(container: Obj) -> Obj | None:
    return ((container.get("lifecycle") or {}).get("preStop")) or None


async def run_http(action: Obj, pod_ip: str, container: Obj, http: aiohttp.ClientSession) -> str:
    """One httpGet hook; raises ``HookFailed`` on a transport error."""
    port = resolve_port(action.get("port"), container)
    if port is None:
        raise HookFailed(f"no container port named {action.get('port')!r}")
    scheme = str(action.get("scheme", "HTTP")).lower()
    path = action.get("path", "/")
    url = f"{scheme}://{action.get('host') or pod_ip}:{port}{path if path.startswith('/') else '/' + path}"
    headers = {h["name"]: h["value"] for h in action.get("httpHeaders") or []}
    try:
        async with http.get(url, headers=headers, ssl=False, timeout=aiohttp.ClientTimeout(total=None)) as resp:
            await resp.read()
            return f"GET {url}: HTTP {resp.status}"
    except (aiohttp.ClientError, OSError) as exc:
        raise HookFailed(f"GET {url}: {exc!r}") from exc


async def run_exec(argv: list[str], env: dict[str, str], cwd: Path, log_path: Path,
                   executable: Callable[[str], str | None]) -> str:
    """One exec hook; raises ``HookFailed`` when the command is unknown or exits non-zero."""
    if not argv:
        raise HookFailed("exec hook with no command")
    exe = executable(argv[0]) or shutil.which(argv[0])
    if exe is None:
        raise HookFailed(f"exec hook: {argv[0]!r} not found")
    with _hook_log(log_path, argv) as out:
        proc = await asyncio.create_subprocess_exec(exe, *argv[1:], stdin=asyncio.subprocess.DEVNULL, stdout=out,
                                                    stderr=asyncio.subprocess.STDOUT, env=env, cwd=cwd,
                                                    start_new_session=True)
    try:
        code = await proc.wait()
    except asyncio.CancelledError:  # the grace ran out: the kubelet stops waiting, we also end the command
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    if code != 0:
        raise HookFailed(f"exec {argv[0]!r} exited with {code}")
    return f"exec {argv[0]!r} exited 0"


def _hook_log(path: Path, argv: list[str]) -> BinaryIO:
    """The container's log, for appending, with a line saying what the hook runs."""
    out = open(path, "ab")  # the caller closes it once the child holds its own descriptor
    out.write(f"--- launcher: preStop exec {' '.join(argv)}\n".encode())
    out.flush()
    return out


class HookFailed(Exception):
    pass


async def run_pre_stop(hook: Obj, grace: float, run: Callable[[Obj], Any], name: str) -> float:
    """Run ``hook`` (through ``run``, one of the runners above bound to the container) for at most ``grace``
    seconds; return the grace left for SIGTERM -> SIGKILL."""
    started = time.monotonic()
    try:
        if "sleep" in hook:
            await asyncio.wait_for(asyncio.sleep(float(hook["sleep"].get("seconds", 0))), grace)
            outcome = "slept"
        else:
            outcome = await asyncio.wait_for(run(hook), grace)
        log.info("%s preStop hook done after %.1fs: %s", name, time.monotonic() - started, outcome)
    except TimeoutError:
        log.warning("%s preStop hook not done within the %.0fs grace period", name, grace)
    except HookFailed as exc:
        log.warning("%s preStop hook failed: %s", name, exc)
    return max(MINIMUM_GRACE_SECONDS, grace - (time.monotonic() - started))
