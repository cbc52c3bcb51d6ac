"""``TestOrchestrator``: one aiohttp server with the BYOC and Live Runner routes of a go-livepeer orchestrator.

    async with TestOrchestrator.start(secret="s3cret", trickle_base_url=trickle.base_url) as orch:
        ...  # orch.url, orch.capabilities (the BYOC table), orch.live_runners (the Live Runner registry)

go-livepeer cannot be built here, so tests talk to this instead; every route names the upstream function it
follows (``byoc.py``, ``streams.py``, ``live_runner_routes.py``). Off-chain: signatures are only checked to be
hex, there are no tickets or payments, and prices are 0; ``onchain_prices`` adds the on-chain Live Runner price
validation, nothing else of an on-chain orchestrator.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from ..launcher.dns import HostsFileResolver
from .byoc import ByocRoutes
from .capabilities import CapabilityTable
from .channels import TrickleChannels
from .cli import cli_app, load_runners_config
from .faults import Faults
from .live_runner_routes import LiveRunnerRoutes
from .live_runners import LiveRunnerRegistry
from .streams import StreamRoutes
from .tls import SelfSignedCertificate, make_self_signed

log = logging.getLogger(__name__)


class TestOrchestrator:
    """A running test orchestrator; create it with :meth:`start` (or :meth:`serve` then :meth:`close`)."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        *,
        secret: str = "orch-secret",
        trickle_base_url: str | None = None,
        public_trickle_base_url: str | None = None,
        tls: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat_interval: float = 5.0,
        heartbeat_ttl: float = 20.0,
        health_interval: float = 5.0,
        health_timeout: float = 3.0,
        o2r_interval: float = 10.0,
        live_runner_url: str | None = None,
        hosts_file: str | None = None,
        cli_port: int = 0,
        runners_config: str | None = None,
        monitor_interval: float = 23.0,
        onchain_prices: bool = False,
    ) -> None:
        """See :meth:`start` for the arguments."""
        self.secret = secret
        self.trickle_base_url = trickle_base_url
        self.public_trickle_base_url = public_trickle_base_url
        self.tls = tls
        self.host = host
        self.port = port
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_ttl = heartbeat_ttl
        self.health_interval = health_interval
        self.health_timeout = health_timeout
        self.o2r_interval = o2r_interval
        self.live_runner_url = live_runner_url
        self.hosts_file = hosts_file
        self.cli_port = cli_port
        self.runners_config = runners_config
        self.monitor_interval = monitor_interval
        self.onchain_prices = onchain_prices
        self._cli_runner: web.AppRunner | None = None
        self.certificate: SelfSignedCertificate | None = None
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._byoc: ByocRoutes | None = None
        self._live: LiveRunnerRoutes | None = None
        self.faults = Faults()  # fault injection and request journal (faults.py)

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, **options: Any) -> AsyncIterator[TestOrchestrator]:
        """Serve on a free 127.0.0.1 port until the block ends.

        secret: the orchestrator secret (``-orchSecret``): raw ``Authorization`` for ``/capability/*`` and for a
            runner's first heartbeat. trickle_base_url: the trickle server channels are created on and handed to
            workers (``http://127.0.0.1:PORT/ai/trickle/``); without it, starts and channel callbacks fail.
            public_trickle_base_url: the client-facing base for Live Runner channel ``url`` (default: the same).
        tls: HTTPS with a self-signed certificate (``.certificate.cert_file`` is a CA bundle that trusts it).
        heartbeat_interval, heartbeat_ttl: seconds, announced to runners as Go durations ("5s", "500ms").
        health_interval, health_timeout: seconds, static runner health polling.
        o2r_interval: seconds between ``{"keep":"alive"}`` messages on a runner's o2r channel.
        live_runner_url: runner-facing base URL (``-liveRunnerAddr``); default: this server's URL.
        hosts_file: resolve host names through this hosts file first (the local cluster's Service names, kept by
            ``byoc_testenv.launcher``), as an orchestrator inside the cluster would through cluster DNS.
        cli_port: the CLI port (``-cliAddr``, plain HTTP) serving ``POST /registerLiveRunners``; 0 picks a free one.
        runners_config: a runners.json registered at start (``-liveRunnerConfig``); an invalid one fails the start.
        monitor_interval: seconds between a BYOC stream monitor's checks (upstream 23 s, ``monitorOrchStream``).
        onchain_prices: validate Live Runner ``price_info`` as an on-chain orchestrator does (heartbeats and static
            entries; ``normalizeLiveRunnerPriceInfo``).
        """
        orch = cls(**options)
        try:
            await orch.serve()  # a start that fails half way (a bad runners.json) releases what it took
            yield orch
        finally:
            await orch.close()

    # -- addresses ---------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http(s)://127.0.0.1:PORT``, without a trailing slash (the ``-serviceAddr``)."""
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def cli_url(self) -> str:
        """``http://127.0.0.1:CLI_PORT`` (the ``-cliAddr``, where static runners are upserted)."""
        return f"http://{self.host}:{self.cli_port}"

    @property
    def runner_facing_url(self) -> str:
        return (self.live_runner_url or self.url).rstrip("/")

    @property
    def capabilities(self) -> CapabilityTable:
        assert self._byoc is not None, "not started"
        return self._byoc.table

    @property
    def byoc_streams(self) -> StreamRoutes:
        """The BYOC streams (``.streams`` by id) and their routes."""
        assert self._byoc is not None, "not started"
        return self._byoc.streams

    @property
    def live_runners(self) -> LiveRunnerRegistry:
        assert self._live is not None, "not started"
        return self._live.registry

    @property
    def live_runner_routes(self) -> LiveRunnerRoutes:
        assert self._live is not None, "not started"
        return self._live

    # -- lifecycle ---------------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        connector = None
        if self.hosts_file:
            # No DNS cache: Service names change as the launcher rewrites the file.
            connector = aiohttp.TCPConnector(resolver=HostsFileResolver(self.hosts_file), use_dns_cache=False)
        self._http = aiohttp.ClientSession(auto_decompress=False, connector=connector)
        trickle = TrickleChannels(self._http, self.trickle_base_url) if self.trickle_base_url else None
        self._byoc = ByocRoutes(self.secret, self._http, trickle, lambda: self.url, self.monitor_interval)
        registry = LiveRunnerRegistry(self.secret, self.heartbeat_interval, self.heartbeat_ttl, self.onchain_prices)
        self._live = LiveRunnerRoutes(
            registry,
            self._http,
            trickle,
            self.public_trickle_base_url,
            service_url=lambda: self.url,
            runner_facing_url=lambda: self.runner_facing_url,
            health_interval=self.health_interval,
            health_timeout=self.health_timeout,
            o2r_interval=self.o2r_interval,
        )
        app = web.Application(middlewares=[self.faults.middleware])
        self.faults.add_routes(app)
        self._byoc.add_routes(app)
        self._live.add_routes(app)
        return app

    async def serve(self) -> None:
        app = self.build_app()
        ssl_context = None
        if self.tls:
            self.certificate = make_self_signed()
            ssl_context = self.certificate.server_context()
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=ssl_context)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the one site, started: it listens
        assert self._live is not None
        self._live.start()
        await self._serve_cli(self._live)
        log.info("test orchestrator serving on %s (CLI %s)", self.url, self.cli_url)

    async def _serve_cli(self, live: LiveRunnerRoutes) -> None:
        if self.runners_config:
            count = await load_runners_config(live, Path(self.runners_config))
            log.info("registered %d static live runners from %s", count, self.runners_config)
        self._cli_runner = web.AppRunner(cli_app(live), handle_signals=False, access_log=None)
        await self._cli_runner.setup()
        site = web.TCPSite(self._cli_runner, self.host, self.cli_port)
        await site.start()
        self.cli_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._live is not None:
            await self._live.close()
        if self._byoc is not None:
            await self._byoc.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._cli_runner is not None:
            await self._cli_runner.cleanup()
            self._cli_runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self.certificate is not None:
            self.certificate.remove()

    def __repr__(self) -> str:
        return f"TestOrchestrator({self.url!r})"
