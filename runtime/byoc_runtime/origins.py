"""Which origins (``scheme://host:port``) a worker may open the URLs of a start request on.

A start request names the trickle channels (``subscribe/publish/control/events/data_url``) and, through a Live
Runner proxy, a ``Livepeer-Session-Control`` URL; the worker GETs, POSTs and DELETEs them. go-livepeer's
orchestrator copies the gateway's body over the URLs it made, so without a list a paying gateway could point the
worker at any address its pod reaches (cloud metadata, in-cluster APIs) and read the answers back through the
events channel. With ``BYOC_ALLOWED_ORIGINS`` or ``BYOC_ALLOWED_ORIGINS_FILE`` set a URL must be on one of those
origins and carry no user info, query or fragment (which would cut off the segment path the worker appends).
Neither set: any http(s) URL, as pytrickle takes them (local use). The operator keeps the file (a ConfigMap volume,
one origin per line) current with the orchestrators it wired the worker to, so an orchestrator added to a fleet
needs no pod restart; an unreadable or empty file allows nothing.

Refusals name the field, never the URL: channel URLs are credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from yarl import URL

log = logging.getLogger(__name__)


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


def _bare(url: URL) -> bool:
    """No path, query, fragment or user info: nothing but scheme, host and port."""
    return url.path in ("", "/") and not (url.query_string or url.fragment or url.user)


@dataclass(frozen=True, slots=True)
class AllowedOrigins:
    """Unrestricted (nothing configured) allows every http(s) URL; restricted, only URLs on ``origins``."""

    origins: frozenset[str] = frozenset()
    restricted: bool = False

    @classmethod
    def parse(cls, entries: Iterable[str], restricted: bool | None = None) -> AllowedOrigins:
        """From ``http://host[:port]`` entries (restricted when there are any, unless told); ``ValueError`` for one
        with a path, query or user info."""
        found = set()
        for entry in entries:
            entry = entry.strip()
            if not entry:
                continue
            origin = origin_of(entry)
            parsed = URL(entry) if origin else None
            if not origin or parsed is None or not _bare(parsed):
                raise ValueError(f"{entry!r} is not an origin (scheme://host[:port])")
            found.add(origin)
        return cls(frozenset(found), bool(found) if restricted is None else restricted)

    @property
    def any(self) -> bool:
        return not self.restricted

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


class OriginSource:
    """The fixed origins (``BYOC_ALLOWED_ORIGINS``) plus those in a file (``BYOC_ALLOWED_ORIGINS_FILE``), the file
    re-read when it changes (a ConfigMap volume swaps a link: ``stat`` follows it)."""

    def __init__(self, fixed: AllowedOrigins, path: Path | None = None) -> None:
        self.fixed = fixed
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._failing = False
        self._current = AllowedOrigins(fixed.origins, restricted=True) if path is not None else fixed

    def current(self) -> AllowedOrigins:
        if self.path is None:
            return self.fixed
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_ino)
            if stamp != self._stamp:
                listed = AllowedOrigins.parse(self.path.read_text().splitlines(), restricted=True)
                self._current = AllowedOrigins(self.fixed.origins | listed.origins, restricted=True)
                self._stamp = stamp
        except (OSError, ValueError) as exc:
            if not self._failing:
                log.error("allowed origins file %s unusable (%s): only the fixed origins are allowed", self.path, exc)
            self._failing, self._stamp = True, None
            self._current = AllowedOrigins(self.fixed.origins, restricted=True)
            return self._current
        self._failing = False
        return self._current
