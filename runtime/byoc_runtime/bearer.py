"""The bearer token stream requests must carry (the token registered with the capability; go-livepeer sends it
back as ``Authorization: Bearer <token>``).

Given as a value (``BYOC_TOKEN``) or as a file: a mounted Kubernetes Secret, re-read whenever the file changes
(the kubelet swaps the mount's ``..data`` link, which changes the inode seen through the path), so a rotated token
takes effect without a restart. A token file that cannot be read refuses every stream request rather than
letting them through.
"""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class BearerToken:
    def __init__(self, value: str | None = None, path: Path | None = None) -> None:
        self._value = value or None
        self._path = path
        self._seen: tuple[int, int, int] | None = None
        self._problem: str | None = None
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

    def refusal(self, authorization: str) -> str | None:
        """Why a request with this Authorization header is refused, or None if it may pass."""
        if not self.required:
            return None
        token = self.current()
        if token is None:
            return f"the token file is unreadable ({self._problem})"
        if not authorization:
            return "missing bearer token: send Authorization: Bearer <token>"
        if not hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode()):
            return "invalid bearer token"
        return None

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
        if self._seen is not None:
            log.info("token file %s changed: using the new token", self._path)
        self._value, self._seen, self._problem = value, seen, None
