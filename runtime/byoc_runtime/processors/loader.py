"""Find the processor named on the command line: a built-in name, ``package.module:Class``, or
``path/to/file.py:Class``. The result is a zero-argument factory, called once per session slot.

Accepted targets: a ``FrameProcessor`` subclass (ours, or real pytrickle's), a class whose methods carry
pytrickle's handler decorators (wrapped in a ``CallbackProcessor``), or any zero-argument callable that
returns a processor. Importing user code first installs the ``pytrickle`` alias when pytrickle itself is
absent, so modules written against pytrickle import unchanged.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..compat import install_pytrickle_alias
from .handlers import CallbackProcessor, has_handlers

BUILTIN_PROCESSORS: dict[str, str] = {
    "passthrough": "byoc_runtime.processors.builtin:PassthroughProcessor",
    "grayscale": "byoc_runtime.processors.builtin:GrayscaleProcessor",
    "green-tint": "byoc_runtime.processors.builtin:GreenTintProcessor",
    "cartoon": "byoc_runtime.processors.cartoon:CartoonProcessor",
    "whisper": "byoc_runtime.processors.speech.processor:WhisperProcessor",
}


class ProcessorLoadError(Exception):
    pass


def _import_module(name: str) -> Any:
    if name.endswith(".py") or "/" in name:
        path = Path(name).resolve()
        if not path.is_file():
            raise ProcessorLoadError(f"no such file: {path}")
        module_name = f"byoc_user_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ProcessorLoadError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        sys.path.insert(0, str(path.parent))  # let the file import its siblings
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(name)


def served_processor(obj: Any) -> Any:
    """What the worker runs for what a factory made: a pytrickle ``StreamProcessor`` (pytrickle's examples build
    one in their ``main()``) is served through its server's frame gate, with its frame skipping and overlay;
    anything else as it is."""
    gate = getattr(getattr(obj, "server", None), "gate", None)
    if not hasattr(obj, "process_video_async") and hasattr(gate, "process_video_async"):
        return gate
    return obj


def _factory(target: Any, spec: str) -> Callable[[], Any]:
    if isinstance(target, type):
        if has_handlers(target) and not hasattr(target, "process_video_async"):
            return lambda: CallbackProcessor.from_handlers(target(), name=target.__name__)
        return target
    if callable(target):
        return lambda: served_processor(target())
    raise ProcessorLoadError(f"{spec} is neither a class nor a callable")


def resolve_processor(spec: str, pytrickle_shim: str = "auto") -> Callable[[], Any]:
    """A factory for the processor ``spec`` names. Raises ``ProcessorLoadError`` with the reason."""
    target_path = BUILTIN_PROCESSORS.get(spec, spec)
    module_name, sep, attribute = target_path.rpartition(":")
    if not sep or not module_name or not attribute:
        known = ", ".join(BUILTIN_PROCESSORS)
        raise ProcessorLoadError(f"unknown processor {spec!r}: use one of {known} or module:Class")
    if pytrickle_shim != "never":
        install_pytrickle_alias(force=pytrickle_shim == "always")
    try:
        module = _import_module(module_name)
    except ProcessorLoadError:
        raise
    except Exception as exc:
        raise ProcessorLoadError(f"cannot import {module_name}: {type(exc).__name__}: {exc}") from exc
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            raise ProcessorLoadError(f"{module_name} has no {attribute}") from exc
    return _factory(target, spec)
