"""Compatibility with code written for pytrickle.

``install_pytrickle_alias()`` makes ``import pytrickle`` (and ``pytrickle.frames``, ``.frame_processor``,
``.decorators``, ``.stream_processor``, ``.server``, ``.api``) resolve to ``byoc_runtime.compat.pytrickle``,
so a processor module written against pytrickle runs on this runtime unchanged. It is a meta-path finder,
not an installed ``pytrickle`` package: nothing on disk clashes with a real pytrickle, and by default the
alias is only put in place when pytrickle is not installed (``force=True`` uses it regardless).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

ALIAS = "pytrickle"
TARGET = "byoc_runtime.compat.pytrickle"


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        pass  # already executed under its real name


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        real = TARGET + fullname[len(ALIAS) :]
        if importlib.util.find_spec(real) is None:
            return None
        is_package = fullname == ALIAS
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(real), is_package=is_package)


def _installed() -> bool:
    return any(isinstance(finder, _AliasFinder) for finder in sys.meta_path)


def install_pytrickle_alias(force: bool = False) -> bool:
    """Route ``import pytrickle`` here. Returns whether the alias is active."""
    if _installed():
        return True
    if not force and importlib.util.find_spec(ALIAS) is not None:
        return False  # the real pytrickle is installed: leave it alone
    if force:
        for name in [n for n in sys.modules if n == ALIAS or n.startswith(ALIAS + ".")]:
            del sys.modules[name]
    sys.meta_path.insert(0, _AliasFinder())
    return True


def uninstall_pytrickle_alias() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _AliasFinder)]
    for name in [n for n in sys.modules if n == ALIAS or n.startswith(ALIAS + ".")]:
        del sys.modules[name]
