"""Security review M6: a stream's params reach the processor whole, but status, events and logs show only the
keys the client sent, never a secret-looking one, and logs never show a value."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from byoc_runtime import trickle
from byoc_runtime.processors.builtin import PassthroughProcessor
from byoc_runtime.session.params import SessionParams, secret_looking
from byoc_testenv.polling import eventually

from .support import Stream, publish, running_worker

SMALL = {"width": 128, "height": 96, "max_framerate": 30}


@pytest.mark.parametrize(
    "key", ["api_key", "apiKey", "OPENAI_API_KEY", "hf_token", "accessToken", "password", "client_secret", "auth"]
)
def test_credential_names_look_secret(key: str) -> None:
    assert secret_looking(key)


@pytest.mark.parametrize("key", ["prompt", "strength", "width", "max_framerate", "seed", "keyframe_interval"])
def test_ordinary_names_do_not(key: str) -> None:
    assert not secret_looking(key)


def test_the_echo_holds_only_keys_a_client_sent_and_no_secret_among_them() -> None:
    params = SessionParams({"model": "owner's", "hf_token": "owner's"}, {"prompt": "p", "api_key": "k"}, 24)
    params.apply({"seed": 3, "password": "pw", "model": "client's"})
    assert params.values == {
        "model": "client's",
        "hf_token": "owner's",
        "prompt": "p",
        "api_key": "k",
        "seed": 3,
        "password": "pw",
    }
    assert params.echo() == {"prompt": "p", "seed": 3, "model": "client's"}


class Recorder(PassthroughProcessor):
    """Keeps what the runtime handed it, to show the filter is on what is shown only."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seen: list[dict[str, Any]] = []

    async def on_stream_start(self, params: dict[str, Any]) -> None:
        self.seen.append(dict(params))

    async def update_params(self, params: dict[str, Any]) -> None:
        self.seen.append(dict(params))


DEFAULTS = {"hf_token": "OWNER-TOKEN-6b1f", "model": "OWNER-MODEL-93ce"}
START = {**SMALL, "prompt": "CLIENT-PROMPT-20aa", "api_key": "CLIENT-KEY-71d4"}
CONTROL = {"strength": "CLIENT-STRENGTH-5e0c", "password": "CLIENT-PASSWORD-c3b9"}
BAD_CONTROL = {"width": 64, "accessToken": "CLIENT-TOKEN-e81d"}  # width without height: refused
REST = {"seed": "CLIENT-SEED-04f7", "client_secret": "CLIENT-SECRET-aa52"}
HIDDEN = ["OWNER-TOKEN-6b1f", "OWNER-MODEL-93ce", "CLIENT-KEY-71d4", "CLIENT-PASSWORD-c3b9"]
HIDDEN += ["CLIENT-TOKEN-e81d", "CLIENT-SECRET-aa52"]
SHOWN = ["CLIENT-PROMPT-20aa", "CLIENT-STRENGTH-5e0c", "CLIENT-SEED-04f7"]


@pytest.mark.trickle
async def test_params_are_echoed_without_the_worker_defaults_or_secrets(trickle_server, make_segments, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    recorder = Recorder()
    async with running_worker(lambda: recorder, params=DEFAULTS) as rt:
        await rt.wait_health("IDLE")
        stream = Stream.create(trickle_server)
        stream.listen()
        status, body = await rt.post(
            "/stream/start", json=stream.start_body(START), headers={"X-Stream-Id": stream.sid}
        )
        assert status == 200, body
        control = trickle.JsonPublisher(stream.url("-control"))
        feeding = asyncio.create_task(publish(stream.url(), make_segments(seconds=3)))
        await control.send(BAD_CONTROL)
        await eventually(lambda: "error" in stream.event_types(), 10, "an error event", interval=0.05)
        await control.send(CONTROL)
        await eventually(
            lambda: "strength" in rt.worker.sessions.get(stream.sid).params, 10, "the update applied", interval=0.05
        )
        status, _ = await rt.post("/stream/params", json=REST, headers={"X-Stream-Id": stream.sid})
        assert status == 200
        _, one = await rt.get("/stream/status", headers={"X-Stream-Id": stream.sid})
        _, whole = await rt.get("/stream/status")
        await feeding
        await stream.wait_ended()
        await control.close(delete=False)
        await asyncio.sleep(0.3)
        await stream.close()

    # The processor got everything: the defaults under the client's params, then each update.
    assert recorder.seen[0] == {**DEFAULTS, **START}
    assert CONTROL in recorder.seen and REST in recorder.seen
    # What anyone reading the stream sees: the client's ordinary keys, nothing else.
    assert one["params"] == {**SMALL, "prompt": START["prompt"], "strength": CONTROL["strength"], "seed": REST["seed"]}
    assert whole["sessions"][0]["params"] == one["params"]
    statuses = [e["event"] for e in stream.events if e["event"]["type"] == "status"]
    assert statuses[-1]["inference_status"]["last_params"] == one["params"]
    errors = [e["event"]["message"] for e in stream.events if e["event"]["type"] == "error"]
    assert any("width and height must be given together" in m for m in errors), errors
    shown = json.dumps([stream.events, one, whole])
    for value in SHOWN:
        assert value in shown
    for value in HIDDEN:
        assert value not in shown
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "params updated from control" in logged
    for value in HIDDEN + SHOWN:
        assert value not in logged
