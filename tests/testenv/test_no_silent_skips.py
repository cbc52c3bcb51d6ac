"""Without a Go toolchain (and no cached trickle server) the trickle tests fail with the reason: they do not turn
into skips that leave `make test` green."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_trickle_tests_fail_with_the_reason_when_go_is_missing(tmp_path: Path) -> None:
    env = dict(os.environ, BYOC_TESTENV_GO=str(tmp_path / "no-go"), BYOC_TESTENV_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/trickle/test_trickle_json.py",
            "-k",
            "test_json_round_trip",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "skipped" not in out and "1 error" in out, out
    assert f"the Go toolchain is needed to build the trickle server ({tmp_path / 'no-go'} does not exist)" in out, out
