"""Hypothesis profiles. `make test` (and so CI) runs the fixed set of examples each test derives from its own
name (derandomized), so a red run is reproducible and never a roll of the dice; to explore new examples, run
`HYPOTHESIS_PROFILE=explore .venv/bin/pytest tests/property` (random, with the local example database), and turn
whatever it finds into a deterministic regression test where the fix is."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False)
# Loaded before the test modules are imported, so their settings objects inherit it.
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
