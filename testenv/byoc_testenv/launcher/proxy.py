"""kube-proxy, emulated in user space: a TCP listener on every ClusterIP:port, forwarding to ready endpoints.

ClusterIPs come from loopback (each cluster's ``service_cidr``, a /20 of ``nodes.SERVICE_BLOCK``), and Linux
routes all of 127.0.0.0/8 to ``lo``, so binding them needs no privileges. Endpoints are picked round-robin; a
refused connection tries the next one (kube-proxy's iptables mode would not, but a process that just died is not
what tests are about). With no endpoint the client's connection is reset, as kube-proxy's REJECT rule does.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import struct

from .services import ServiceView

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0


class Listener:
    def __init__(self, service: str, address: tuple[str, int]) -> None:
        self.service = service
        self.address = address
        self.endpoints: tuple[tuple[str, int], ...] = ()
        self._turn = itertools.count()
        self._server: asyncio.Server | None = None
        self._conns: dict[asyncio.Task[None], list[asyncio.StreamWriter]] = {}

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._accept, *self.address, reuse_address=True)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)
        # Aborting the sockets ends each connection's pipes (cancelling the handlers would make asyncio's
        # server callback log the CancelledError).
        for writers in self._conns.values():
            for writer in writers:
                writer.transport.abort()
        await asyncio.gather(*self._conns, return_exceptions=True)

    def _order(self) -> list[tuple[str, int]]:
        if not self.endpoints:
            return []
        start = next(self._turn) % len(self.endpoints)
        return list(self.endpoints[start:] + self.endpoints[:start])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        writers = self._conns[task] = [writer]
        try:
            await self._serve(reader, writer, writers)
        finally:
            self._conns.pop(task, None)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     writers: list[asyncio.StreamWriter]) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        for host, port in self._order():
            try:
                upstream = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
                break
            except (OSError, TimeoutError) as exc:
                log.info("%s: endpoint %s:%d refused (%s)", self.service, host, port, exc)
        if upstream is None:
            _reset(writer)
            return
        up_reader, up_writer = upstream
        writers.append(up_writer)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0): the client sees 'connection reset', not an empty reply."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # half-close: the other direction may still be sending
    except (ConnectionError, OSError):
        writer.transport.abort()


class ServiceProxy:
    def __init__(self) -> None:
        self.listeners: dict[tuple[str, int], Listener] = {}

    async def update(self, views: list[ServiceView]) -> None:
        wanted: dict[tuple[str, int], tuple[str, tuple[tuple[str, int], ...]]] = {}
        for view in views:
            if view.cluster_ip is None:
                continue
            for port in view.ports:
                if port.protocol == "TCP":
                    wanted[(view.cluster_ip, port.port)] = (f"{view.namespace}/{view.name}:{port.port}",
                                                            port.endpoints)
        for address in [a for a in self.listeners if a not in wanted]:
            await self.listeners.pop(address).close()
        for address, (name, endpoints) in wanted.items():
            listener = self.listeners.get(address)
            if listener is None:
                listener = Listener(name, address)
                try:
                    await listener.open()
                except OSError as exc:
                    log.warning("cannot listen on %s:%d for %s: %s", *address, name, exc)
                    continue
                self.listeners[address] = listener
            listener.endpoints = endpoints

    async def close(self) -> None:
        for listener in self.listeners.values():
            await listener.close()
        self.listeners.clear()
