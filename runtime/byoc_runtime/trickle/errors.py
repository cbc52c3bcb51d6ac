"""Exceptions raised by the trickle transport."""

from __future__ import annotations


class TrickleError(Exception):
    """Base class. Raised as such when retries of a transient failure are exhausted."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class ChannelClosed(TrickleError):
    """The server closed the channel (``Lp-Trickle-Closed``): publishing to it is over."""


class ChannelNotFound(ChannelClosed):
    """404: the channel does not exist (never created, deleted, or swept as idle)."""


class SegmentError(TrickleError):
    """One segment failed part-way (body cut off, POST rejected or broken).

    The stream itself goes on: the next segment can be read or written as usual.
    """

    def __init__(
        self, message: str, *, url: str | None = None, status: int | None = None, seq: int | None = None
    ) -> None:
        super().__init__(message, url=url, status=status)
        self.seq = seq
