"""The Live Runner wire (byoc_edge/liverunner.py), pinned down: every refusal by its message, every parsed field
by a value that changes the answer, and the defaults of what a reply leaves out."""

from __future__ import annotations

import pytest
from byoc_edge.liverunner import (
    Channel,
    ChannelSpec,
    HeartbeatReply,
    RunnerAdvert,
    RunnerGPU,
    SessionContext,
    advert_errors,
    channels_request,
    join_url,
    parse_channels_reply,
    parse_go_duration,
)

URL = "http://10.0.0.1:8000"


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"runner_url": "https://10.0.0.1:8443"}, []),
        ({"runner_url": "ftp://10.0.0.1"}, ["runner_url must be an absolute http(s) URL, got 'ftp://10.0.0.1'"]),
        ({"runner_url": "http://"}, ["runner_url must be an absolute http(s) URL, got 'http://'"]),
        ({"app": ""}, ["app must be non-empty and trimmed"]),
        ({"app": "app/x "}, ["app must be non-empty and trimmed"]),
        ({"metadata": "m" * 1024}, []),
        ({"metadata": "m" * 1025}, ["metadata must be at most 1024 bytes"]),
        ({"metadata": "\ufffd"}, ["metadata must not contain U+FFFD"]),
        ({"status": "Ready"}, ["status must be lowercase and trimmed"]),
        ({"mode": "single-shot"}, []),
        ({"mode": "batch"}, ["mode must be 'persistent' or 'single-shot'"]),
        ({"capacity": 0}, []),
        ({"capacity": -1}, ["capacity must be >= 0"]),
    ],
)
def test_each_field_go_livepeer_refuses_is_named(fields: dict, errors: list[str]) -> None:
    assert advert_errors(RunnerAdvert(**{"app": "app/x", "runner_url": URL, **fields})) == errors


def test_an_advert_with_every_field_set_sends_every_field() -> None:
    advert = RunnerAdvert(
        "app/x",
        URL,
        runner_id="pod-0",
        status="loading",
        capacity=0,
        mode="single-shot",
        label="pod-0.ns",
        version="1.2",
        metadata='{"k":1}',
        gpu=RunnerGPU("0", "L4", 23034),
        price_info={"price": "0.001", "currency": "USD", "unit": "second"},
        session_ids=("s1", "s2"),
    )
    assert advert.to_json() == {
        "app": "app/x",
        "runner_url": URL,
        "capacity": 0,
        "runner_id": "pod-0",
        "status": "loading",
        "mode": "single-shot",
        "label": "pod-0.ns",
        "version": "1.2",
        "metadata": '{"k":1}',
        "gpu": {"id": "0", "name": "L4", "vram_mb": 23034},
        "price_info": {"price": "0.001", "currency": "USD", "unit": "second"},
        "session_ids": ["s1", "s2"],
    }
    assert RunnerAdvert("app/x", URL, gpu=None, price_info=None).to_json() == {
        "app": "app/x",
        "runner_url": URL,
        "capacity": 1,
        "status": "ready",
        "mode": "persistent",
    }


def test_a_heartbeat_reply_is_read_field_by_field() -> None:
    reply = HeartbeatReply.from_json(
        {
            "runner_id": " r1 ",
            "orchestrator": " http://ORCH-X/ ",
            "heartbeat_interval": "500ms",
            "heartbeat_ttl": "20s",
            "heartbeat_secret": " hs ",
            "session_ids": ["a", 3, "b"],
        }
    )
    assert reply == HeartbeatReply("r1", "http://ORCH-X", 0.5, 20.0, "hs", ("a", "b"))
    # What later replies leave out, or send in another shape, reads as nothing.
    later = {"runner_id": "r1", "orchestrator": 7, "heartbeat_secret": 7, "session_ids": "ab"}
    assert HeartbeatReply.from_json(later) == HeartbeatReply("r1")
    assert HeartbeatReply.from_json({"runner_id": "r1"}) == HeartbeatReply("r1", "", None, None, "", ())
    for bad in ([], {"runner_id": 1}, {"runner_id": " "}):
        with pytest.raises(ValueError, match=r"^heartbeat reply has no runner_id$"):
            HeartbeatReply.from_json(bad)


def test_go_durations_with_a_sign_or_a_bare_zero() -> None:
    assert parse_go_duration("-1m30s") == -90.0
    assert parse_go_duration("+5s") == 5.0
    assert parse_go_duration("0") == 0.0 and parse_go_duration("-0") == 0.0
    assert parse_go_duration("X5s") is None and parse_go_duration("5s-") is None


def test_session_headers_need_a_token_and_an_http_control_url() -> None:
    headers = {
        "Livepeer-Session-Id": " s1 ",
        "Livepeer-Session-Token": " tok ",
        "Livepeer-Session-Control": "https://orch/runner/r/session/s1",
    }
    assert SessionContext.from_headers(headers) == SessionContext("s1", "tok", "https://orch/runner/r/session/s1", "")
    message = "^Livepeer-Session-Id without Livepeer-Session-Token and an http\\(s\\) Livepeer-Session-Control$"
    for missing in ("Livepeer-Session-Token", "Livepeer-Session-Control"):
        with pytest.raises(ValueError, match=message):
            SessionContext.from_headers({k: v for k, v in headers.items() if k != missing})


def test_only_the_slashes_between_base_and_path_are_trimmed() -> None:
    assert join_url("http://orch/session/X/", "/Xstop/") == "http://orch/session/X/Xstop/"
    assert join_url("http://orch/session/s1", "channels") == "http://orch/session/s1/channels"


def test_the_channels_asked_for_and_the_descriptors_read_back() -> None:
    assert channels_request((ChannelSpec("in", "video/mp2t"), ChannelSpec("events", "application/json"))) == {
        "channels": [{"name": "in", "mime_type": "video/mp2t"}, {"name": "events", "mime_type": "application/json"}]
    }
    full = {
        "name": "in",
        "url": "https://pub/in",
        "internal_url": "http://int/in",
        "mime_type": "video/mp2t",
        "channel_name": "s1-in",
    }
    assert Channel.from_json(full) == Channel("in", "https://pub/in", "http://int/in", "video/mp2t", "s1-in")
    assert Channel.from_json({"name": "in", "url": "https://pub/in"}) == Channel("in", "https://pub/in", "", "", "")
    for bad in ([], {"name": "in"}, {"url": "https://pub/in"}, {"name": 1, "url": "https://pub/in"}):
        with pytest.raises(ValueError, match=r"^channel descriptor needs a name and a url$"):
            Channel.from_json(bad)


def test_a_channels_reply_without_the_list_or_without_channels_asked_for_is_refused() -> None:
    for bad in ([], {"channels": {}}, {}):
        with pytest.raises(ValueError, match=r"^channels reply has no channels list$"):
            parse_channels_reply(bad)
    wanted = (ChannelSpec("in", "video/mp2t"), ChannelSpec("out", "video/mp2t"), ChannelSpec("data", "x"))
    with pytest.raises(ValueError, match=r"^channels reply lacks out, data$"):
        parse_channels_reply({"channels": [{"name": "in", "url": "u"}]}, wanted)
