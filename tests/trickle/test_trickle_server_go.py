"""Runs the Go unit tests of the testenv trickle server (testenv/byoc_testenv/go/trickle)."""

from __future__ import annotations

import os
import subprocess

import pytest
from byoc_testenv.trickle import GO_SOURCE_DIR, find_go

pytestmark = pytest.mark.trickle


def test_go_server_unit_tests() -> None:
    go = find_go()
    assert go is not None, "no Go toolchain to run the trickle server's Go tests (set BYOC_TESTENV_GO)"
    env = dict(os.environ, GOTOOLCHAIN="local", GOPROXY="off", GOFLAGS="-mod=mod", CGO_ENABLED="0")
    proc = subprocess.run(
        [go, "test", "-count=1", "./..."],
        cwd=GO_SOURCE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
