"""``python -m byoc_testenv.orchestrator``: run the test orchestrator as a process.

When it is ready it prints one line to stdout, ``url=http://127.0.0.1:PORT cli=http://127.0.0.1:CLI_PORT`` (plus
`` ca=PATH`` with ``--tls``), and serves until SIGTERM/SIGINT (or stdin EOF with ``--exit-on-stdin-eof``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .server import TestOrchestrator


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m byoc_testenv.orchestrator", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    secret = p.add_mutually_exclusive_group()
    secret.add_argument("--secret", help="orchestrator secret (-orchSecret)")
    secret.add_argument("--secret-file", type=Path, help="file holding the orchestrator secret")
    p.add_argument("--trickle-base-url", help="trickle server base, e.g. http://127.0.0.1:PORT/ai/trickle/")
    p.add_argument("--public-trickle-base-url", help="client-facing trickle base for Live Runner channel urls")
    p.add_argument("--tls", action="store_true", help="HTTPS with a self-signed certificate")
    p.add_argument("--heartbeat-interval", type=float, default=5.0, help="seconds (Live Runner)")
    p.add_argument("--heartbeat-ttl", type=float, default=20.0, help="seconds (Live Runner)")
    p.add_argument("--health-interval", type=float, default=5.0, help="seconds between static runner health checks")
    p.add_argument("--health-timeout", type=float, default=3.0, help="seconds a static runner health check may take")
    p.add_argument("--monitor-interval", type=float, default=23.0, help="seconds between BYOC stream monitor checks")
    p.add_argument("--onchain-prices", action="store_true", help="validate Live Runner price_info as on-chain")
    p.add_argument("--o2r-interval", type=float, default=10.0, help="seconds between o2r keepalives")
    p.add_argument("--live-runner-url", help="runner-facing base URL (-liveRunnerAddr)")
    p.add_argument("--cli-port", type=int, default=0, help="CLI port (/registerLiveRunners, no auth); 0 picks one")
    p.add_argument("--live-runner-config", help="runners.json registered at start (-liveRunnerConfig)")
    p.add_argument("--hosts-file", help="resolve host names through this hosts file first (byoc_testenv.launcher's)")
    p.add_argument("--exit-on-stdin-eof", action="store_true", help="exit when stdin closes (parent died)")
    p.add_argument("--log-level", default="INFO")
    return p


async def run(args: argparse.Namespace) -> None:
    secret = args.secret_file.read_text().strip() if args.secret_file else (args.secret or "")
    orch = TestOrchestrator(
        secret=secret,
        trickle_base_url=args.trickle_base_url,
        public_trickle_base_url=args.public_trickle_base_url,
        tls=args.tls,
        host=args.host,
        port=args.port,
        heartbeat_interval=args.heartbeat_interval,
        heartbeat_ttl=args.heartbeat_ttl,
        health_interval=args.health_interval,
        health_timeout=args.health_timeout,
        o2r_interval=args.o2r_interval,
        live_runner_url=args.live_runner_url,
        hosts_file=args.hosts_file,
        cli_port=args.cli_port,
        runners_config=args.live_runner_config,
        monitor_interval=args.monitor_interval,
        onchain_prices=args.onchain_prices,
    )
    await orch.serve()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_on_stdin_eof:
        loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(sys.stdin.fileno(), 4096) else None)
    line = f"url={orch.url} cli={orch.cli_url}"
    if orch.certificate is not None:
        line += f" ca={orch.certificate.cert_file}"
    print(line, flush=True)
    try:
        await stop.wait()
    finally:
        await orch.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
