"""Fixtures for the runtime tests."""

from __future__ import annotations

import functools

import pytest
from byoc_runtime.media.testsource import SourceSpec, generate_segments


@functools.cache
def _segments(spec: SourceSpec) -> tuple[bytes, ...]:
    return tuple(generate_segments(spec))


@pytest.fixture(scope="session")
def make_segments():
    """Cached synthetic MPEG-TS segments for a ``SourceSpec`` (generation costs ~0.1 s per second)."""

    def make(**kw: object) -> list[bytes]:
        return list(_segments(SourceSpec(**kw)))

    return make
