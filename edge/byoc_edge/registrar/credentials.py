"""Orchestrator secrets: where they are read from, and keeping them out of logs.

A secret is read when it is needed (each registration), so a rotated Kubernetes Secret mounted as a file is
picked up without a restart. Error messages name the file or variable, never the value. As a second line of
defence, ``Redactor`` rewrites any log record that would still contain a known secret.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

MASK = "[redacted]"


class CredentialError(Exception):
    pass


class SecretSource:
    """A secret in a file (a mounted Secret key) or, without a file, in an environment variable."""

    def __init__(self, path: Path | None = None, env: str = "ORCH_SECRET", environ: Mapping[str, str] | None = None):
        self.path = path
        self.env = env
        self.environ = os.environ if environ is None else environ

    def __repr__(self) -> str:
        return f"SecretSource({self.describe()})"

    def describe(self) -> str:
        return f"file {self.path}" if self.path else f"environment variable {self.env}"

    def read(self) -> str:
        if self.path is not None:
            try:
                value = self.path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise CredentialError(
                    f"cannot read the orchestrator secret from {self.describe()}: {type(exc).__name__}"
                ) from None
        else:
            value = self.environ.get(self.env, "").strip()
        if not value:
            raise CredentialError(f"the orchestrator secret in {self.describe()} is empty")
        return value


def redact(text: str, secrets: set[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):  # longest first: one secret may contain another
        text = text.replace(secret, MASK)
    return text


class Redactor(logging.Filter):
    """A handler filter that masks known secrets in messages and tracebacks (the record is rendered here)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def add(self, secret: str) -> None:
        if len(secret) >= 4:  # masking a 1-3 character "secret" would mangle every message
            self.secrets.add(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = redact(text, self.secrets), ()
        return True

    def install(self) -> None:
        """On every handler of the root logger (handler filters see records from all loggers)."""
        for handler in logging.getLogger().handlers:
            if self not in handler.filters:
                handler.addFilter(self)
