"""The Live Runner wire (pure): headers, heartbeat bodies and replies, channel descriptors, start mapping."""

from __future__ import annotations

import pytest
from byoc_edge.liverunner import (
    LIVE_VIDEO_CHANNELS,
    Channel,
    HeartbeatReply,
    RunnerAdvert,
    RunnerGPU,
    SessionContext,
    advert_errors,
    channels_request,
    parse_channels_reply,
    parse_go_duration,
    unregister_path,
)
from byoc_runtime.liverunner.sessions import client_reply, start_request
from byoc_testenv.orchestrator import go_duration


@pytest.mark.parametrize("seconds", [5, 20, 0.5, 1.5, 90, 0.0001, 3600, 0])
def test_go_durations_round_trip(seconds: float) -> None:
    assert parse_go_duration(go_duration(seconds)) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "s", "5x", "1m x", None, 5])
def test_bad_go_durations(text) -> None:
    assert parse_go_duration(text) is None


def test_session_context_from_proxy_headers() -> None:
    headers = {
        "Livepeer-Session-Id": "session_abc",
        "Livepeer-Session-Token": "tok",
        "Livepeer-Session-Control": "http://orch:8935/runner/pod-0/session/session_abc",
        "Livepeer-Runner-Route": "pod-0",
    }
    context = SessionContext.from_headers(headers)
    assert context is not None and context.route == "pod-0"
    assert context.callback_url("channels") == "http://orch:8935/runner/pod-0/session/session_abc/channels"
    assert context.auth_headers() == {"Livepeer-Session-Token": "tok"}
    assert "tok" not in repr(context)
    assert SessionContext.from_headers({}) is None
    with pytest.raises(ValueError):
        SessionContext.from_headers({"Livepeer-Session-Id": "s"})
    with pytest.raises(ValueError):
        SessionContext.from_headers({**headers, "Livepeer-Session-Control": "/relative"})


def test_advert_body_leaves_empty_fields_out() -> None:
    advert = RunnerAdvert("app/x", "http://10.0.0.1:8000", runner_id="pod-0", capacity=2, gpu=RunnerGPU("0", "L4"))
    assert advert.to_json() == {
        "app": "app/x", "runner_url": "http://10.0.0.1:8000", "capacity": 2, "runner_id": "pod-0",
        "status": "ready", "mode": "persistent", "gpu": {"id": "0", "name": "L4"},
    }  # fmt: skip
    assert advert_errors(advert) == []
    bad = RunnerAdvert(" x", "10.0.0.1:8000", status="Ready", metadata="é" * 600, mode="batch", capacity=-1)
    assert len(advert_errors(bad)) == 6


def test_heartbeat_reply() -> None:
    reply = HeartbeatReply.from_json(
        {"runner_id": "r", "orchestrator": "http://o:1/", "heartbeat_interval": "500ms", "heartbeat_ttl": "20s",
         "heartbeat_secret": "hs", "session_ids": ["a", 3]}
    )  # fmt: skip
    assert (reply.orchestrator, reply.heartbeat_interval, reply.heartbeat_ttl) == ("http://o:1", 0.5, 20.0)
    assert reply.session_ids == ("a",) and "hs" not in repr(reply)
    with pytest.raises(ValueError):
        HeartbeatReply.from_json({"orchestrator": "x"})
    assert unregister_path("a/b") == "/runners/a%2Fb/unregister"


def test_channels() -> None:
    assert [c["name"] for c in channels_request()["channels"]] == ["in", "out", "control", "events", "data"]
    reply = {
        "channels": [
            {"name": s.name, "channel_name": f"s-{s.name}", "url": f"https://pub/{s.name}",
             "internal_url": f"http://int/{s.name}", "mime_type": s.mime_type}
            for s in LIVE_VIDEO_CHANNELS
        ]
    }  # fmt: skip
    channels = parse_channels_reply(reply)
    assert channels["in"].runner_url == "http://int/in" and channels["in"].url == "https://pub/in"
    assert Channel("x", "https://pub/x").runner_url == "https://pub/x"  # no internal URL: the public one
    with pytest.raises(ValueError, match="lacks data"):
        parse_channels_reply({"channels": reply["channels"][:4]})

    context = SessionContext("s1", "tok", "http://orch/runner/r/session/s1")
    body = {"params": {"width": 64, "height": 48}, "subscribe_url": "http://evil/", "gateway_request_id": "g", "k": 1}
    start = start_request(context, body, channels)
    assert start.gateway_request_id == "s1" and start.subscribe_url == "http://int/in"
    assert start.publish_url == "http://int/out" and start.data_url == "http://int/data"
    assert start.params.as_dict() == {"width": 64, "height": 48} and start.model_extra["k"] == 1
    reply_body = client_reply(context, channels, created=True)
    assert reply_body["publish_url"] == "https://pub/in" and reply_body["subscribe_url"] == "https://pub/out"
    assert reply_body["manifest_id"] == "s1" and "http://int" not in str(reply_body)
    # What the worker reports on the events channel (which the client reads) is the public URLs only: the
    # internal ones reveal the orchestrator's -liveRunnerAddr host (doc/live-runner.md).
    reported = start.reported_urls()
    assert reported["subscribe"] == "https://pub/in" and reported["publish"] == "https://pub/out"
    assert "http://int" not in str(reported) and start.urls()["subscribe"] == "http://int/in"
