"""``byoc-registrar``: register this pod's worker as a Livepeer Live Runner, heartbeat, drain on SIGTERM.

byoc-registrar --app live-video-to-video/grayscale --orchestrator https://orch:8935 --secret-file /secrets/orch
POD_IP=10.0.0.7 POD_NAME=worker-0 ORCH_SECRET=... byoc-registrar --app my-app --orchestrator http://orch:8935
byoc-registrar --drain-only --worker-url http://10.0.0.7:8000 --drain-seconds 600   # drain any image, no registration

Exit status: 0 once drained and unregistered, 2 for a bad configuration.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from ..logs import configure_logging
from .config import RegistrarConfig, load_config
from .credentials import Redactor
from .registrar import Registrar
from .server import create_app

log = logging.getLogger("byoc_edge.registrar")
LINGER_S = 2.0


async def serve(config: RegistrarConfig, redactor: Redactor | None = None) -> None:
    registrar = Registrar(config, redactor=redactor)
    runner: web.AppRunner | None = None
    if config.port:
        runner = web.AppRunner(create_app(registrar), handle_signals=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, config.host, config.port).start()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if registrar.draining:
            log.info("second signal: unregistering without waiting for running sessions")
            registrar.hurry()
        else:
            registrar.drain()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        await registrar.run()
        if runner is not None:
            # The kubelet signals this container and runs the worker's preStop at the same time: a preStop /drain
            # arriving just after an idle worker's drain finished still gets its answer instead of a refusal.
            await asyncio.sleep(LINGER_S)
    finally:
        if runner is not None:
            await runner.cleanup()  # after run(): a preStop /drain still waiting gets its answer first


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = load_config(argv)
    except ValueError as exc:
        print(f"byoc-registrar: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level, config.log_format)
    redactor = Redactor()
    redactor.install()
    asyncio.run(serve(config, redactor))
    return 0


if __name__ == "__main__":
    sys.exit(main())
