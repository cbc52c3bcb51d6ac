"""Run a local cluster's pods as local processes, with Services and cluster DNS emulated.

    python -m byoc_testenv.launcher --kubeconfig KUBECONFIG [--image IMAGE]... [--image-map FILE] [--root DIR]

A cluster started by ``byoc-testenv up`` has kwok's default stages only, so its pods show Ready before their
process answers; the launcher then sets Ready to what the probe says (``Cluster.start(extra_stages=
launcher_stages(images))`` avoids that).

``--image`` maps an image to this venv's ``byoc-runtime``/``byoc-router`` (default: the operator's default
runtime image); ``--image-map`` reads a JSON map (``images.dump_image_map``). When ready it prints one line,
``ready root=DIR hosts=FILE``, and serves until SIGTERM/SIGINT (or stdin EOF with ``--exit-on-stdin-eof``),
then stops every process it started.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .controller import LauncherController
from .images import load_image_map, runtime_images


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m byoc_testenv.launcher", description=__doc__.splitlines()[0])
    p.add_argument("--kubeconfig", required=True, type=Path)
    p.add_argument("--image", action="append", default=[], help="image run as the bundled runtime (repeatable)")
    p.add_argument("--image-map", type=Path, help="JSON file: image -> LocalImage")
    p.add_argument("--root", type=Path, help="directory for logs, DNS files and state.json (default: a temp dir)")
    p.add_argument("--max-probe-period", type=float, help="probe at least this often (seconds)")
    p.add_argument("--exit-on-stdin-eof", action="store_true", help="exit when stdin closes (parent died)")
    p.add_argument("--log-level", default="INFO")
    return p


async def run(args: argparse.Namespace) -> None:
    images = load_image_map(args.image_map.read_text()) if args.image_map else {}
    if args.image or not images:
        images.update(runtime_images(*args.image))
    root = args.root or Path(tempfile.mkdtemp(prefix="byoc-launcher-"))
    controller = LauncherController(args.kubeconfig, images, root, args.max_probe_period)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_on_stdin_eof:
        loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(sys.stdin.fileno(), 4096) else None)
    try:
        await controller.start()
        print(f"ready root={root} hosts={controller.hosts_file}", flush=True)
        await stop.wait()
    finally:
        await controller.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
