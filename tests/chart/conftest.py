"""Fixtures for the Helm chart tests: helm with its own home (the helpers are in helm.py)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helm import Helm


@pytest.fixture(scope="session")
def helm_home() -> Iterator[Path]:
    """Helm's config, cache and data dirs, away from the user's."""
    path = Path(tempfile.mkdtemp(prefix="helm-home-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def helm(helm_home: Path) -> Helm:
    return Helm(helm_home)
