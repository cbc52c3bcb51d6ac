"""``byoc-registrar --drain-only``: the sidecar that serves a user image's preStop hook. No orchestrator; its
``/drain`` answers once the worker's ``/health`` says idle, or when the drain grace is over."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp.test_utils import TestServer
from byoc_edge.registrar import server as registrar_server
from byoc_edge.registrar.config import load_config
from byoc_edge.registrar.registrar import Registrar
from byoc_edge.registrar.server import create_app

from .stub_worker import StubWorker


async def drain_sidecar(worker: StubWorker, drain_seconds: float) -> tuple[Registrar, TestServer]:
    args = [
        "--drain-only",
        "--worker-url",
        worker.url,
        "--drain-seconds",
        str(drain_seconds),
        "--probe-interval",
        "0.1",
    ]
    registrar = Registrar(load_config(args, {}))
    server = TestServer(create_app(registrar), host="127.0.0.1")
    await server.start_server()
    return registrar, server


async def test_prestop_waits_until_a_worker_without_drain_endpoint_is_idle(stub_worker: StubWorker) -> None:
    stub_worker.has_drain = False  # a PyTrickle-style image: no /drain, "OK" while streaming
    stub_worker.status, stub_worker.active_streams = "OK", 1
    registrar, server = await drain_sidecar(stub_worker, 60)
    run = asyncio.create_task(registrar.run())
    try:
        async with aiohttp.ClientSession() as http:
            hook = asyncio.create_task(http.get(str(server.make_url("/drain"))))
            await asyncio.sleep(1.0)
            assert not hook.done() and registrar.draining
            assert registrar.worker is not None and registrar.worker.drain_supported is False
            stub_worker.status, stub_worker.active_streams = "IDLE", 0  # the stream ended by itself
            async with await asyncio.wait_for(hook, 10) as resp:
                assert resp.status == 200 and (await resp.json()) == {"drained": True, "orchestrators": []}
        await asyncio.wait_for(run, 10)  # drained: the sidecar's work is done
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await server.close()


async def test_drain_asks_a_worker_that_can_and_gives_up_at_the_grace(stub_worker: StubWorker) -> None:
    stub_worker.status, stub_worker.active_streams = "OK", 1  # never ends
    registrar, server = await drain_sidecar(stub_worker, 1.5)
    run = asyncio.create_task(registrar.run())
    try:
        async with aiohttp.ClientSession() as http:
            loop = asyncio.get_running_loop()
            began = loop.time()
            async with http.get(str(server.make_url("/drain"))) as resp:
                assert resp.status == 200
            assert 1.4 <= loop.time() - began < 15
        assert stub_worker.draining  # our runtime's POST /drain was called: new sessions refused at once
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await server.close()


async def test_a_caller_outside_the_pod_waits_for_a_drain_but_never_starts_one(
    stub_worker: StubWorker, monkeypatch
) -> None:
    # The kubelet's preStop httpGet comes from the node, while this container gets its SIGTERM (which drains) at
    # the same time; any other pod calling /drain must not take the runner out of service (review M1).
    monkeypatch.setattr(registrar_server, "DRAIN_START_WAIT_S", 0.5)
    args = ["--drain-only", "--worker-url", stub_worker.url, "--drain-seconds", "5", "--probe-interval", "0.1"]
    registrar = Registrar(load_config(args, {}))
    server = TestServer(create_app(registrar), host="127.0.0.2")
    await server.start_server()
    run = asyncio.create_task(registrar.run())
    outside = aiohttp.TCPConnector(local_addr=("127.0.0.3", 0))
    try:
        async with aiohttp.ClientSession(connector=outside) as http:
            async with http.post(str(server.make_url("/drain"))) as resp:
                assert resp.status == 409 and (await resp.json())["drained"] is False
            assert not registrar.draining and not stub_worker.draining
            hook = asyncio.create_task(http.get(str(server.make_url("/drain"))))
            await asyncio.sleep(0.1)
            registrar.drain()  # what SIGTERM does
            async with await asyncio.wait_for(hook, 10) as resp:
                assert resp.status == 200 and (await resp.json())["drained"] is True
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await server.close()
