"""Deciding whether a live child object still matches what the operator rendered for it. Pure.

The API server adds defaults (terminationMessagePath, dnsPolicy, ...) and other controllers and users may
add labels or annotations, so "matches" means: every field the operator renders has the rendered value.
Anything else in the live object is left alone. A child edited by hand fails this check and is re-applied.
"""

from __future__ import annotations

from typing import Any

# Fields that belong to the API server or other controllers, never compared.
_IGNORED_METADATA = {"resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"}


def contains(live: Any, desired: Any) -> bool:
    """Whether `live` has every field of `desired` with the same value (lists compared element by element)."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(k in live and contains(live[k], v) for k, v in desired.items() if k not in _IGNORED_METADATA)
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return False
        return all(contains(a, b) for a, b in zip(live, desired, strict=True))
    if (isinstance(desired, int) and isinstance(live, str)) or (isinstance(desired, str) and isinstance(live, int)):
        return str(live) == str(desired)
    return bool(live == desired)
