"""The params one stream runs with, and what of them it may show.

A stream runs with the worker's defaults (``runtime.params``, ``BYOC_PARAMS``) under the params its client
sent at start and in later updates. The defaults are the worker owner's and may hold a model token or an API
key, so status and events echo only keys a client sent (security review M6), and of those only keys whose name
does not look like a secret (``hf_token``, ``apiKey``, ``password``...): a client's own secret is not shown to
everyone who reads the stream's events either. Logs name keys, never values.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from ..frames import DEFAULT_HEIGHT, DEFAULT_WIDTH
from ..media.decode import FrameRateLimiter

# Parts of a key name (split at separators and camelCase humps) that mark it as a secret...
_SECRET_WORDS = frozenset({"key", "auth", "pass", "pwd", "sig"})
# ... and fragments that do anywhere in it (``apikey``, ``accesstoken``, ``client_secret``).
_SECRET_FRAGMENTS = (
    "secret",
    "token",
    "passw",
    "passphrase",
    "credential",
    "apikey",
    "private",
    "signature",
    "cookie",
    "bearer",
    "jwt",
)
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def secret_looking(key: str) -> bool:
    """Whether a param's name suggests its value is a credential (better hidden once too often than shown)."""
    lowered = key.lower()
    if any(fragment in lowered for fragment in _SECRET_FRAGMENTS):
        return True
    return any(word.lower() in _SECRET_WORDS for word in _WORD.findall(key))


def shown(params: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``params`` that may appear in status and events."""
    return {key: value for key, value in params.items() if not secret_looking(key)}


class SessionParams:
    """The merged params, the output size and frame-rate cap they set, and which keys the client sent."""

    def __init__(self, defaults: Mapping[str, Any], requested: Mapping[str, Any], max_framerate: int) -> None:
        self.values: dict[str, Any] = {**defaults, **requested}
        self._client_keys = dict.fromkeys(requested)  # ordered set
        self.width = int(self.values.get("width", DEFAULT_WIDTH))
        self.height = int(self.values.get("height", DEFAULT_HEIGHT))
        self.limiter = FrameRateLimiter(int(self.values.get("max_framerate", max_framerate)))
        self.lock = asyncio.Lock()  # one update at a time reaches the processor

    def apply(self, validated: Mapping[str, Any]) -> None:
        """Take an update a client sent (validated: ``width`` comes with ``height``)."""
        if "width" in validated:
            self.width, self.height = int(validated["width"]), int(validated["height"])
        if "max_framerate" in validated:
            self.limiter.max_fps = int(validated["max_framerate"])
        self.values.update(validated)
        self._client_keys.update(dict.fromkeys(validated))

    def echo(self) -> dict[str, Any]:
        """What status and events show: the client's keys with their current values, secrets left out."""
        return shown({key: self.values[key] for key in self._client_keys})
