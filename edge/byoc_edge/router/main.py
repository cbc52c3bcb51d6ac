"""``byoc-router``: the session router in front of a BYOCWorker's pods.

byoc-router --port 8080 --pods-dns cartoon-pods.default.svc.cluster.local --pod-port 8000 --sessions-per-pod 2
byoc-router --pods http://10.0.0.7:8000,http://10.0.0.8:8000 --token-env BYOC_TOKEN
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from ..logs import configure_logging
from .app import create_app
from .config import RouterConfig, load_config
from .streams import Router

log = logging.getLogger("byoc_edge.router")


async def serve(config: RouterConfig) -> None:
    router = Router(config)
    runner = web.AppRunner(create_app(router), handle_signals=False, access_log=None)
    await runner.setup()  # runs Router.start: pods and their running streams are known before serving
    await web.TCPSite(runner, config.host, config.port).start()
    log.info(
        "byoc-router serving",
        extra={
            "address": f"{config.host}:{config.port}",
            "source": router.source.describe(),
            "sessions_per_pod": config.sessions_per_pod,
            "auth": bool(config.token),
        },
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = load_config(argv)
    except ValueError as exc:
        print(f"byoc-router: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level, config.log_format)
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
