"""``byoc-runtime``: serve a processor as a Livepeer BYOC live-video worker.

byoc-runtime --processor grayscale --capacity 2 --port 8000
BYOC_PROCESSOR=my_pkg.effects:Glow BYOC_PARAMS='{"strength": 0.5}' byoc-runtime
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Sequence

import torch
from aiohttp import web

from .api.server import create_app
from .config import RuntimeConfig, load_config
from .processors.loader import ProcessorLoadError, resolve_processor
from .processors.pool import ProcessorPool
from .worker import Worker

log = logging.getLogger("byoc_runtime")


def freeze_startup_objects() -> None:
    """Move everything alive now (imported modules, torch, the app) out of the collector's reach: a full
    collection then walks only what streams allocate. Without it a full collection of the ~200k objects torch and
    PyAV bring walks them all, 50-300 ms with the GIL held, which every stage of every stream waits out (the
    soak's dropped frames)."""
    gc.collect()
    gc.freeze()


def build_worker(config: RuntimeConfig) -> Worker:
    factory = resolve_processor(config.processor, config.pytrickle_shim)
    pool = ProcessorPool(factory, config.capacity, config.params, name=config.processor.rsplit(":", 1)[-1])
    return Worker(config, pool)


async def serve(config: RuntimeConfig) -> None:
    worker = build_worker(config)
    runner = web.AppRunner(create_app(worker), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, config.host, config.port).start()
    freeze_startup_objects()
    log.info(
        "byoc-runtime serving %s on %s:%d (capacity %d, cuda %s)",
        config.processor,
        config.host,
        config.port,
        config.capacity,
        torch.cuda.is_available(),
    )
    signals = asyncio.Queue[int]()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, signals.put_nowait, sig)
    try:
        await signals.get()
        # Kubernetes sends SIGTERM after the preStop drain, so the grace has usually run out by now; without a
        # preStop hook it starts here. A second signal stops at once.
        log.info("shutting down: draining %d sessions", len(worker.sessions))
        draining = asyncio.create_task(worker.shut_down())
        second = asyncio.create_task(signals.get())
        await asyncio.wait({draining, second}, return_when=asyncio.FIRST_COMPLETED)
        second.cancel()
        if not draining.done():
            log.info("second signal: stopping %d sessions now", len(worker.sessions))
            draining.cancel()
        await asyncio.gather(draining, second, return_exceptions=True)
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = load_config(argv)
    except ValueError as exc:
        print(f"byoc-runtime: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(config))
    except ProcessorLoadError as exc:
        print(f"byoc-runtime: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
