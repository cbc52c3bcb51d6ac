"""The PyTrickle 0.1.6 environment: its own venv, outside the repo, made once and reused.

PyTrickle 0.1.6 pins ``av<=14.4.0`` while the runtime uses av 18, so it cannot share the repo's venv. To avoid a
second multi-GB torch download, the venv gets only what must differ (pytrickle itself, av, nvidia-ml-py) and a
``.pth`` line that appends the repo venv's site-packages *after* its own: its own ``av`` wins, while torch,
numpy, aiohttp, pydantic and Pillow come from the repo venv. av 14.4.0 and 14.3.0 publish no wheel for this
Python (3.11, Linux x86-64) on PyPI, so the newest that installs, 14.2.0, is used (still within PyTrickle's pin).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

PYTRICKLE = "pytrickle==0.1.6"
OWN_PACKAGES = ("av==14.2.0", "nvidia-ml-py==13.615.71")
MARKER = "byoc-bench.json"
PTH_NAME = "zz_byoc_repo_venv.pth"  # sorts last: the venv's own packages come first on sys.path


def default_root() -> Path:
    return Path(os.environ.get("BYOC_BENCH_CACHE", Path.home() / ".cache" / "byoc-bench")) / "pytrickle-venv"


def venv_python(root: Path) -> Path:
    return root / "bin" / "python"


def _wanted() -> dict[str, object]:
    return {"pytrickle": PYTRICKLE, "own": list(OWN_PACKAGES), "shared": sysconfig.get_paths()["purelib"]}


def ensure_venv(root: Path | None = None, log=print) -> Path:
    """Create (or reuse) the venv and check that PyTrickle imports with its own av; returns its python."""
    root = root or default_root()
    python = venv_python(root)
    marker = root / MARKER
    if python.exists() and marker.exists() and json.loads(marker.read_text()).get("wanted") == _wanted():
        return python
    log(f"setting up the PyTrickle venv in {root} (once)")
    _run([sys.executable, "-m", "venv", "--clear", str(root)])
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # --no-deps: PyTrickle's other requirements come from the repo venv (the .pth below).
    _run([*pip, "--no-deps", PYTRICKLE])
    _run([*pip, "--only-binary", ":all:", *OWN_PACKAGES])
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / PTH_NAME).write_text(sysconfig.get_paths()["purelib"] + "\n")
    versions = check(python)
    marker.write_text(json.dumps({"wanted": _wanted(), "versions": versions}, indent=2))
    return python


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{proc.stdout}{proc.stderr}")


def check(python: Path) -> dict[str, str]:
    """Import PyTrickle in the venv; returns the versions it runs with (raises if it does not import)."""
    code = (
        "import json, av, torch, numpy, PIL, aiohttp, pytrickle;"
        "assert 'pytrickle-venv' in av.__file__, av.__file__;"
        "print(json.dumps({'pytrickle': pytrickle.__version__, 'av': av.__version__, 'torch': torch.__version__,"
        "'numpy': numpy.__version__, 'pillow': PIL.__version__, 'aiohttp': aiohttp.__version__}))"
    )
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
