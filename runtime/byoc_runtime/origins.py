"""Which origins (``scheme://host:port``) a worker may open the URLs of a start request on.

A start request names the trickle channels (``subscribe/publish/control/events/data_url``) and, through a Live
Runner proxy, a ``Livepeer-Session-Control`` URL; the worker GETs, POSTs and DELETEs them. go-livepeer's
orchestrator copies the gateway's body over the URLs it made, so without a list a paying gateway could point the
worker at any address its pod reaches (cloud metadata, in-cluster APIs) and read the answers back through the
events channel. With ``BYOC_ALLOWED_ORIGINS`` set (the operator sets it to the orchestrators it wired the worker
to) a URL must be on one of those origins and carry no user info, query or fragment (which would cut off the
segment path the worker appends). Empty: any http(s) URL, as pytrickle takes them (local use).

Refusals name the field, never the URL: channel URLs are credentials.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from yarl import URL


def origin_of(url: str) -> str | None:
    """``scheme://host:port`` (port explicit, names lower-case), or None for anything but an http(s) URL."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.port is None:
        return None
    host = parsed.host.lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6
    return f"{parsed.scheme}://{host}:{parsed.port}"


@dataclass(frozen=True, slots=True)
class AllowedOrigins:
    """An empty set allows every http(s) URL."""

    origins: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowedOrigins:
        """From ``http://host[:port]`` entries; ``ValueError`` for one with a path, query or user info."""
        found = set()
        for entry in entries:
            entry = entry.strip()
            if not entry:
                continue
            origin = origin_of(entry)
            parsed = URL(entry) if origin else None
            if parsed is None or parsed.path not in ("", "/") or parsed.query_string or parsed.fragment or parsed.user:
                raise ValueError(f"{entry!r} is not an origin (scheme://host[:port])")
            found.add(origin)
        return cls(frozenset(found))

    @property
    def any(self) -> bool:
        return not self.origins

    def refusal(self, url: str) -> str | None:
        """Why the worker must not open ``url`` (without the URL), or None."""
        origin = origin_of(url)
        if origin is None:
            return "must be an http(s) URL"
        if self.any:
            return None
        parsed = URL(url)
        if parsed.user is not None or parsed.password is not None:
            return "must not carry user info"
        if parsed.query_string or parsed.fragment or "?" in url or "#" in url:
            return "must not carry a query or fragment"
        if origin not in self.origins:
            return "is not on an allowed origin (the orchestrators this worker is registered with)"
        return None

    def refused_fields(self, urls: Mapping[str, str | None]) -> list[tuple[str, str]]:
        """``(field, reason)`` for each given URL that may not be opened."""
        out = []
        for name, url in urls.items():
            if url and (why := self.refusal(url)) is not None:
                out.append((name, why))
        return out
