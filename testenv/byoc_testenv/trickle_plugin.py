"""pytest plugin (entry point ``byoc_testenv_trickle``): a local trickle server for tests.

Fixtures:
  ``trickle_server``   session-scoped :class:`~byoc_testenv.trickle.TrickleServer`, orchestrator-like
                       (channels must be created first: ``trickle_server.create_channel(name)``).
  ``trickle_channel``  URL of a fresh, uniquely named ``video/mp2t`` channel on that server.

Tests that stop or restart a server start their own with ``TrickleServer.start()``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from byoc_testenv.trickle import TrickleServer

_names = itertools.count()


@pytest.fixture(scope="session")
def trickle_server() -> Iterator[TrickleServer]:
    # No skip without Go: a cached binary needs none, and a missing one fails the test with the reason.
    server = TrickleServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def trickle_channel(trickle_server: TrickleServer, request: pytest.FixtureRequest) -> str:
    name = f"{request.node.name}-{next(_names)}"
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    return trickle_server.create_channel(safe)
