"""The operator's command line: `byoc-operator [--namespace NS ...]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

import kopf
import prometheus_client

import byoc_operator.handlers  # noqa: F401  (registers the handlers)
from byoc_operator.config import ConfigError, OperatorConfig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the BYOCWorker operator.")
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    parser.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        help="liveness endpoint URL for the kubelet probe ('' to disable)",
    )
    parser.add_argument(
        "--peering", default=None, help="kopf peering name for HA (several replicas, one active); default: standalone"
    )
    parser.add_argument("--priority", type=int, default=0, help="peering priority of this replica")
    parser.add_argument("--metrics-port", type=int, default=8081, help="Prometheus /metrics port (0: off)")
    parser.add_argument("--metrics-host", default="0.0.0.0", help="address the metrics endpoint listens on")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    try:
        # The one read of the environment: a bad setting stops the operator here, before it touches the cluster.
        config = OperatorConfig.from_env(os.environ)
    except ConfigError as exc:
        parser.exit(2, f"byoc-operator: {exc}\n")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.metrics_port:
        prometheus_client.start_http_server(args.metrics_port, addr=args.metrics_host)
    asyncio.run(
        kopf.operator(
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            standalone=args.peering is None,
            peering_name=args.peering,
            priority=args.priority,
            liveness_endpoint=args.liveness or None,
            memo=kopf.Memo(config=config),
        )
    )


if __name__ == "__main__":
    main()
