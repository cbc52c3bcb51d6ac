"""The bearer token stream requests must carry (the token registered with the capability; go-livepeer sends it
back as ``Authorization: Bearer <token>``).

Given as a value (``BYOC_TOKEN``) or as a file: a mounted Kubernetes Secret, re-read whenever the file changes
(the kubelet swaps the mount's ``..data`` link, which changes the inode seen through the path), so a rotated token
takes effect without a restart.

A 401 makes go-livepeer drop the whole capability (``byoc/stream_orchestrator.go``), so:
- after a rotation the previous token stays valid for ``previous_grace_s``: the orchestrator learns the new token
  at the operator's next registration, the pods at the kubelet's next Secret sync, in no fixed order;
- a token file that cannot be read refuses every stream request (never lets them through) with a 503, which
  says "not now" instead of "you are not allowed".
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


# Longer than a registration refresh plus a kubelet Secret sync, with room to spare.
PREVIOUS_TOKEN_GRACE_SECONDS = 600.0


@dataclass(frozen=True)
class Refusal:
    """Why a stream request is refused, and with which status."""

    status: int
    message: str


class BearerToken:
    def __init__(
        self,
        value: str | None = None,
        path: Path | None = None,
        previous_grace_s: float = PREVIOUS_TOKEN_GRACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._value = value or None
        self._path = path
        self._seen: tuple[int, int, int] | None = None
        self._problem: str | None = None
        self._previous: str | None = None
        self._previous_until = 0.0
        self._grace = previous_grace_s
        self._clock = clock
        if path is not None:
            self._reload()

    @property
    def required(self) -> bool:
        return self._path is not None or self._value is not None

    def current(self) -> str | None:
        """The token now (None: none required, or the file is unreadable; see `problem`)."""
        if self._path is not None:
            self._reload()
        return self._value

    @property
    def problem(self) -> str | None:
        return self._problem

    def header(self) -> dict[str, str]:
        token = self.current()
        return {"Authorization": f"Bearer {token}"} if token else {}

    def refusal(self, authorization: str) -> Refusal | None:
        """Why a request with this Authorization header is refused, or None if it may pass."""
        if not self.required:
            return None
        token = self.current()
        if token is None:
            return Refusal(503, f"the token file is unreadable ({self._problem}): try again later")
        if not authorization:
            return Refusal(401, "missing bearer token: send Authorization: Bearer <token>")
        given = authorization.encode()
        if hmac.compare_digest(given, f"Bearer {token}".encode()):
            return None
        previous = self._previous if self._clock() < self._previous_until else None
        if previous is not None and hmac.compare_digest(given, f"Bearer {previous}".encode()):
            return None
        return Refusal(401, "invalid bearer token")

    def _reload(self) -> None:
        assert self._path is not None
        try:
            st = os.stat(self._path)
            seen = (st.st_ino, st.st_mtime_ns, st.st_size)
            if seen == self._seen:
                return
            value = self._path.read_text().strip()
        except OSError as exc:
            if self._problem is None:
                log.error("token file %s unreadable: stream requests are refused: %s", self._path, exc.strerror)
            self._value, self._seen, self._problem = None, None, exc.strerror or type(exc).__name__
            return
        if not value:
            self._value, self._seen, self._problem = None, seen, "empty"
            return
        if self._seen is not None and self._value is not None and value != self._value:
            log.info("token file %s changed: the previous token stays valid for %.0fs", self._path, self._grace)
            self._previous, self._previous_until = self._value, self._clock() + self._grace
        self._value, self._seen, self._problem = value, seen, None
