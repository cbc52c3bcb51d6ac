"""Which pod runs which stream: the router's cache of the pods' truth.

A stream answers to its ``X-Stream-Id`` and to its ``gateway_request_id`` (go-livepeer makes them equal, other
callers may not), so one pin holds every key of its stream and unpinning one key drops them all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


@dataclass(eq=False)
class Pin:
    pod: str
    keys: set[str]
    pinned_at: float


@dataclass
class PinTable:
    _by_key: dict[str, Pin] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.pins())

    def __iter__(self) -> Iterator[Pin]:
        return iter(self.pins())

    def pins(self) -> list[Pin]:
        return list({id(p): p for p in self._by_key.values()}.values())

    def get(self, key: str) -> str | None:
        pin = self._by_key.get(key)
        return pin.pod if pin else None

    def only(self) -> Pin | None:
        """The single pin, when exactly one stream runs (a caller that names no stream means that one)."""
        pins = self.pins()
        return pins[0] if len(pins) == 1 else None

    def pin(self, keys: Iterable[str], pod: str, now: float) -> Pin:
        keys = {k for k in keys if k}
        for key in keys:
            self.unpin(key)
        pin = Pin(pod, keys, now)
        for key in keys:
            self._by_key[key] = pin
        return pin

    def unpin(self, key: str) -> Pin | None:
        pin = self._by_key.get(key)
        if pin is not None:
            for k in pin.keys:
                self._by_key.pop(k, None)
        return pin

    def unpin_pod(self, pod: str) -> list[Pin]:
        dropped = [p for p in self.pins() if p.pod == pod]
        for pin in dropped:
            self.unpin(next(iter(pin.keys)))
        return dropped

    def per_pod(self) -> Counter[str]:
        return Counter(p.pod for p in self.pins())

    def reconcile(self, pod: str, streams: Iterable[frozenset[str]], polled_at: float) -> tuple[int, int]:
        """Make the pins of ``pod`` what it reported at ``polled_at``; returns (added or moved, dropped).

        A reported stream pinned elsewhere moves here (the pod knows best). A pin on this pod the pod did not
        report is dropped, unless it is newer than the poll: a start placed while the poll was in flight.
        """
        added = 0
        seen: set[int] = set()
        for keys in streams:
            current = list({id(p): p for k in keys if (p := self._by_key.get(k))}.values())
            if len(current) == 1 and current[0].pod == pod and keys <= current[0].keys:
                seen.add(id(current[0]))
                continue
            seen.add(id(self.pin(set(keys).union(*(p.keys for p in current)), pod, polled_at)))
            added += 1
        stale = [p for p in self.pins() if p.pod == pod and id(p) not in seen and p.pinned_at < polled_at]
        for pin in stale:
            self.unpin(next(iter(pin.keys)))
        return added, len(stale)
