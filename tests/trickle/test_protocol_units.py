"""trickle/protocol.py without a server: the backoff schedule exactly, which statuses and errors are transient,
headers, and how channel URLs appear in logs."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from byoc_runtime.trickle.protocol import (
    CLOSED_HEADER,
    DEFAULT_RETRY,
    LATEST_HEADER,
    SEQ_HEADER,
    STATUS_OUT_OF_WINDOW,
    TRANSIENT_ERRORS,
    RetryPolicy,
    channel_label,
    int_header,
    is_closed,
    is_transient_status,
    segment_url,
)


def test_default_backoff_schedule() -> None:
    assert [DEFAULT_RETRY.delay(n) for n in range(1, 9)] == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    assert DEFAULT_RETRY.delay(0) == 0.1
    assert [DEFAULT_RETRY.exhausted(n) for n in (7, 8, 9)] == [False, True, True]
    assert sum(DEFAULT_RETRY.delay(n) for n in range(1, DEFAULT_RETRY.attempts)) == pytest.approx(7.1)


def test_custom_backoff_schedule() -> None:
    policy = RetryPolicy(attempts=3, base_delay=0.5, max_delay=3.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]
    assert not policy.exhausted(2) and policy.exhausted(3)


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (500, True),
        (503, True),
        (599, True),
        (408, True),
        (429, True),
        (499, False),
        (400, False),
        (404, False),
        (470, False),
        (200, False),
    ],
)
def test_transient_statuses(status: int, transient: bool) -> None:
    assert is_transient_status(status) is transient


def test_transient_errors_are_connection_errors_and_timeouts() -> None:
    assert issubclass(aiohttp.ServerDisconnectedError, TRANSIENT_ERRORS)
    assert issubclass(aiohttp.ClientConnectorError, TRANSIENT_ERRORS)
    assert issubclass(asyncio.TimeoutError, TRANSIENT_ERRORS)
    assert not issubclass(aiohttp.ClientResponseError, TRANSIENT_ERRORS)


def test_wire_names() -> None:
    assert (SEQ_HEADER, LATEST_HEADER, CLOSED_HEADER, STATUS_OUT_OF_WINDOW) == (
        "Lp-Trickle-Seq",
        "Lp-Trickle-Latest",
        "Lp-Trickle-Closed",
        470,
    )


def test_headers() -> None:
    assert int_header({"Lp-Trickle-Seq": "12"}, SEQ_HEADER) == 12
    assert int_header({"Lp-Trickle-Seq": "-1"}, SEQ_HEADER) == -1
    assert int_header({"Lp-Trickle-Seq": "x"}, SEQ_HEADER) is None
    assert int_header({}, SEQ_HEADER) is None
    assert is_closed({CLOSED_HEADER: ""}) and is_closed({CLOSED_HEADER: "terminated"}) and not is_closed({})


def test_segment_url() -> None:
    assert segment_url("http://h/ch/", 3) == "http://h/ch/3" == segment_url("http://h/ch", 3)
    assert segment_url("http://h/ch", -1) == "http://h/ch/-1"


def test_channel_label_hides_the_stream_name_and_keeps_host_kind_and_seq() -> None:
    label = channel_label("http://127.0.0.1:7/ai/trickle/secret-name-out/12")
    assert label.startswith("127.0.0.1:7/…-out#") and label.endswith("/12") and "secret" not in label
    digest = label.removeprefix("127.0.0.1:7/…-out#").removesuffix("/12")
    assert len(digest) == 8 and int(digest, 16) >= 0
    assert channel_label("http://127.0.0.1:7/ai/trickle/secret-name-out/") == f"127.0.0.1:7/…-out#{digest}"
    assert channel_label("http://127.0.0.1:7/ai/trickle/secret-name-out/-1") == f"127.0.0.1:7/…-out#{digest}/-1"
    for kind in ("control", "events", "data", "in"):
        assert channel_label(f"http://h/x-{kind}").startswith(f"h/…-{kind}#")
    plain = channel_label("http://h/ai/trickle/stream")
    assert plain.startswith("h/…#") and len(plain) == len("h/…#") + 8
    assert channel_label("http://h/a") != channel_label("http://h/b")


def test_only_slashes_are_trimmed_and_only_numbers_are_segments() -> None:
    assert segment_url("http://h/streamX", 3) == "http://h/streamX/3"
    assert channel_label("http://h/ai/nameX") != channel_label("http://h/ai/name")
    digest = channel_label("http://h/ai/name/X5").rpartition("#")[2]
    assert len(digest) == 8 and "/" not in digest  # X5 is part of the name, not a segment number
