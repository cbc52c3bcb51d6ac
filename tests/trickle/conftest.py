"""Helpers for the trickle transport tests (the server comes from byoc_testenv's trickle plugin)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from byoc_testenv.trickle import TrickleServer

_ids = itertools.count()


@pytest.fixture
def own_server() -> Iterator[TrickleServer]:
    """A private server a test may stop and restart; channel "ch" exists from the start."""
    server = TrickleServer.start(channels=["ch=video/mp2t"], first_byte_timeout=0.5, verbose=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_channel(trickle_server: TrickleServer):
    def make(prefix: str = "ch", mime_type: str = "video/mp2t") -> str:
        return trickle_server.create_channel(f"{prefix}-{next(_ids)}", mime_type)

    return make
