"""The hash-locked dependency sets (locks/) agree with the pins they were resolved from, and every install that
ships (the images, `make setup`) goes through them with --require-hashes."""

from __future__ import annotations

import importlib.util
import re

import pytest

from .dockerfile import ROOT

# locks/resolve.py, the script `make lock` runs: a file, not a package of the project.
_spec = importlib.util.spec_from_file_location("lock_resolve", ROOT / "locks" / "resolve.py")
assert _spec and _spec.loader
locks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(locks)

LOCK_LINE = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)")


def locked(name: str) -> dict[str, tuple[str, int]]:
    """package -> (version, number of hashes) in locks/<name>.txt."""
    found: dict[str, tuple[str, int]] = {}
    current = ""
    for line in (ROOT / "locks" / f"{name}.txt").read_text().splitlines():
        if match := LOCK_LINE.match(line):
            current = locks.requirement_name(match[1])
            found[current] = (match[2], 0)
        elif "--hash=sha256:" in line and current:
            version, hashes = found[current]
            found[current] = (version, hashes + 1)
    return found


@pytest.mark.parametrize("name", sorted(locks.lock_sets()))
def test_every_pin_is_locked_at_its_version_and_every_package_has_hashes(name: str) -> None:
    lock = locked(name)
    assert lock, f"locks/{name}.txt is empty"
    for requirement in locks.lock_sets()[name]:
        package, _, version = requirement.partition("==")
        assert version, f"{requirement}: not pinned exactly"
        assert lock.get(locks.requirement_name(package), ("", 0))[0] == version, (
            f"{requirement} is locked as {lock.get(locks.requirement_name(package))} in locks/{name}.txt: run make lock"
        )
    assert [p for p, (_, hashes) in lock.items() if hashes == 0] == []
    assert not set(lock) & locks.OWN, "the project's own distributions are installed from the tree"


def test_the_dev_lock_holds_every_image_lock() -> None:
    """`make setup` tests the very versions the images ship."""
    dev = locked("dev")
    for name in set(locks.lock_sets()) - {"dev", "pip"}:  # pip's lock is the installer's, not an image's
        for package, (version, _) in locked(name).items():
            assert dev.get(package, ("",))[0] == version, f"{package}: {version} in {name}, {dev.get(package)} in dev"


def install_commands(text: str) -> list[str]:
    joined = text.replace("\\\n", " ")
    return [line for line in joined.splitlines() if re.search(r"pip[\w.]* install", line)]


@pytest.mark.parametrize(
    "path,lock",
    [
        ("Makefile", "pip"),
        ("Makefile", "dev"),
        ("Dockerfile.operator", "operator"),
        ("Dockerfile.edge", "edge"),
        ("Dockerfile.runtime", "runtime"),
    ],
)
def test_installs_go_through_the_lock_with_hashes(path: str, lock: str) -> None:
    commands = install_commands((ROOT / path).read_text())
    assert any(f"--require-hashes -r locks/{lock}.txt" in c for c in commands), commands
    # Anything else installed is the project's own tree, never a dependency (nor pip itself) from an index.
    for command in commands:
        if "--require-hashes" not in command:
            assert "--no-deps" in command, command
