"""Writes the hash-locked dependency sets (`make lock`): one per image and one for `make setup`.

The pins live in the pyproject files and requirements-dev.txt; a lock adds every transitive dependency with the
hashes PyPI publishes, so `pip install --require-hashes` installs exactly what was reviewed. Locks are for
CPython 3.11 on x86_64 Linux (the images' and CI's platform). tests/images/test_locks.py fails when a pin and its
lock disagree."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ROOT / "locks"
# The project's own distributions: installed from the tree with --no-deps, never from an index.
OWN = {"byoc-operator", "byoc-runtime", "byoc-edge", "byoc-testenv"}
PLATFORM = ["--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28"]
# The installer itself: `make setup` upgrades the venv's pip from its own lock (locks/pip.txt) before anything else.
PIP = "pip==25.3"


def requirement_name(requirement: str) -> str:
    return requirement.split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip().lower().replace("_", "-")


def distribution_requirements(directory: str, extras: tuple[str, ...] = ()) -> list[str]:
    """A distribution's pinned requirements and those of the named extras, without the project's own ones."""
    pyproject = ROOT / directory / "pyproject.toml"
    if not pyproject.exists():
        return []
    project = tomllib.loads(pyproject.read_text())["project"]
    found = list(project.get("dependencies", []))
    for extra in extras:
        found += project.get("optional-dependencies", {}).get(extra, [])
    return [r for r in found if requirement_name(r) not in OWN]


def dev_requirements() -> list[str]:
    lines = (ROOT / "requirements-dev.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def lock_sets() -> dict[str, list[str]]:
    """Lock name -> the requirements it resolves (the runtime image holds the edge distribution too)."""
    runtime = distribution_requirements("runtime", ("whisper",)) + distribution_requirements("edge")
    sets = {
        "pip": [PIP],
        "operator": distribution_requirements("operator"),
        "runtime": runtime,
        "dev": (
            distribution_requirements("operator") + runtime + distribution_requirements("testenv") + dev_requirements()
        ),
    }
    if (ROOT / "edge" / "pyproject.toml").exists():
        sets["edge"] = distribution_requirements("edge")
    return {name: sorted(set(reqs)) for name, reqs in sets.items()}


def compile_lock(name: str, requirements: list[str]) -> None:
    argv = [sys.executable, "-m", "uv", "pip", "compile", "-", "--generate-hashes", "--no-header", "--quiet"]
    argv += [*PLATFORM, "-o", str(LOCKS / f"{name}.txt")]
    subprocess.run(argv, input="\n".join(requirements) + "\n", text=True, check=True)


def main() -> None:
    for name, requirements in lock_sets().items():
        compile_lock(name, requirements)
        print(f"locks/{name}.txt: {len(requirements)} pins")


if __name__ == "__main__":
    main()
